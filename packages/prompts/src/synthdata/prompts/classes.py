"""One way to decide a run's classes: class names, CLIP templates and the prompt prefix/suffix, from a
built-in data set, a class list file, or the ``dataset.json`` of shards (every command resolves them here)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.prompts._registry import (
    GENERIC_PREFIX,
    DatasetSpec,
    find_dataset_by_classes,
    get_dataset,
    load_class_list,
)
from synthdata.prompts.errors import ClassListError, UnknownDatasetError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClassSource:
    """The classes of a run and where they came from. ``templates`` is None where no data set supplies
    CLIP templates (the caller then uses its generic ones)."""

    classnames: tuple[str, ...]
    templates: tuple[str, ...] | None
    prefix: str
    suffix: str
    dataset: str | None
    origin: str

    def templates_or(self, default: Sequence[str]) -> list[str]:
        """The data set's templates, else ``default``."""
        return list(self.templates if self.templates is not None else default)


def read_templates(path: str | os.PathLike[str]) -> list[str]:
    """CLIP templates from a file: one a line, ``#`` comments; each holds ``{}`` (or ``{c}``) for the name."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ClassListError(f"cannot read --templates {path}: {exc.strerror or exc}") from exc
    templates = [t.strip() for t in lines if t.strip() and not t.lstrip().startswith("#")]
    if not templates or any("{}" not in t and "{c}" not in t for t in templates):
        raise ClassListError(f"--templates {path}: need one template a line, each with '{{}}' for the class name")
    return [t.replace("{c}", "{}") for t in templates]


def _from_spec(spec: DatasetSpec, origin: str, names: Sequence[str] | None = None) -> ClassSource:
    classnames = tuple(names) if names is not None else spec.classnames
    return ClassSource(classnames, spec.templates, spec.prefix, spec.suffix, spec.name, origin)


def _generic(names: Sequence[str], origin: str) -> ClassSource:
    spec = find_dataset_by_classes(names)
    if spec is not None:  # e.g. synth-generate named the run after its --out folder
        return _from_spec(spec, f"{origin} (the classes of {spec.name}: its templates)", names)
    return ClassSource(tuple(names), None, GENERIC_PREFIX, "", None, origin)


def _from_shards(info: Any, location: str) -> ClassSource:
    names = list(info.classes)
    origin = f"{location}/dataset.json"
    config = info.config if isinstance(info.config, dict) else {}
    named = config.get("dataset") if isinstance(config.get("dataset"), str) else None
    named = named or (info.name if isinstance(info.name, str) and info.name else None)
    if named:
        try:
            spec = get_dataset(named)
        except UnknownDatasetError:
            spec = None
        if spec is not None:  # its templates and prefix suit a subset of its classes too
            if tuple(names) != spec.classnames:
                log.info("%s: %d classes, not exactly those of %s; using its templates", origin, len(names), spec.name)
            return _from_spec(spec, f"{origin} (templates of dataset {spec.name})", names)
        log.info("%r in %s is not a built-in data set", named, origin)
    return _generic(names, origin)


def resolve_classes(
    *,
    dataset: str | None = None,
    classes_file: str | os.PathLike[str] | None = None,
    shards: str | os.PathLike[str] | None = None,
    templates_file: str | os.PathLike[str] | None = None,
) -> ClassSource:
    """The classes from exactly one of ``dataset`` (a built-in name), ``classes_file`` or ``shards`` (a shard
    directory or URL whose ``dataset.json`` holds them); ``templates_file`` replaces the templates.

    A class list or ``dataset.json`` equal to a built-in data set's class list gets that data set's
    templates and prefix; otherwise the templates are None (the caller's generic ones) and the prefix is
    ``"a photo of"``.
    """
    given = [x for x in (dataset, classes_file, shards) if x is not None]
    if len(given) != 1:
        raise ClassListError("give exactly one of --dataset NAME, --classes FILE or --classes-from-shards")
    if dataset is not None:
        source = _from_spec(get_dataset(dataset), f"dataset {get_dataset(dataset).name}")
    elif classes_file is not None:
        source = _generic(load_class_list(classes_file), f"class list {classes_file}")
    else:
        from synthdata.shards import read_dataset_json

        source = _from_shards(read_dataset_json(shards), os.fspath(shards))  # type: ignore[arg-type]
    if templates_file is not None:
        templates = tuple(read_templates(templates_file))
        source = ClassSource(
            source.classnames, templates, source.prefix, source.suffix, source.dataset,
            f"{source.origin}, templates from {templates_file}",
        )
    return source
