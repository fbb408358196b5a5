"""``--config FILE``: options from a TOML, YAML or JSON file, keyed by flag name (``clip-model`` or
``clip_model``, with or without the leading dashes)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: A file written by a run (``synth-pipeline``'s ``R/config.json``) keeps the options it ran with here.
RECORDED_OPTIONS_KEY = "options"


class ConfigFileError(ValueError):
    """A config file cannot be read or names an option the command does not have."""


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        return tomllib.loads(text)
    if suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    if suffix == ".json":
        return json.loads(text)
    raise ConfigFileError(f"--config {path}: unknown file type {suffix or '(none)'}; use .toml, .yaml or .json")


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The options in ``path`` as ``{key: value}`` with keys normalised to ``snake_case``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"--config {path}: cannot read it ({exc.strerror or exc})") from exc
    try:
        obj = _parse(path, text)
    except ConfigFileError:
        raise
    except Exception as exc:  # tomllib, yaml and json each raise their own error types
        raise ConfigFileError(f"--config {path}: not valid {path.suffix[1:].upper()} ({exc})") from exc
    if isinstance(obj, dict) and isinstance(obj.get(RECORDED_OPTIONS_KEY), dict) and "schema" in obj:
        obj = obj[RECORDED_OPTIONS_KEY]
    if not isinstance(obj, dict):
        raise ConfigFileError(f"--config {path}: expected a table/mapping of option names to values")
    return {str(k).lstrip("-").replace("-", "_"): v for k, v in obj.items()}
