"""The built-in datasets (class names, CLIP templates, the paper's domain prefixes) and user class lists."""

from __future__ import annotations

import csv
import difflib
import functools
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from synthdata.prompts.errors import ClassListError, UnknownDatasetError

# Used for class lists given as files: CLIP's recommended 7-template ImageNet subset.
GENERIC_TEMPLATES: tuple[str, ...] = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)
GENERIC_PREFIX = "a photo of"


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: class names in its standard index order, CLIP templates and the generation prefix.

    ``templates`` are format strings with exactly one ``{}``. A Language Enhancement sentence ``s``
    becomes the generation prompt ``f"{prefix} {s}{suffix}"`` (see :meth:`domain_prompt`), which is what
    the paper's generation script did (e.g. EuroSAT: ``"a centered satellite photo of " + s``).
    """

    name: str
    classnames: tuple[str, ...]
    templates: tuple[str, ...]
    prefix: str
    suffix: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classnames)

    def domain_prompt(self, sentence: str) -> str:
        """Wrap a sentence in this dataset's prefix and suffix."""
        return apply_domain(sentence, self.prefix, self.suffix)


def apply_domain(sentence: str, prefix: str, suffix: str) -> str:
    """``prefix + " " + sentence + suffix`` with tidy joins.

    A leading article of the sentence is lower-cased after a prefix ("a photo of the dog ..."), and a
    final full stop is dropped before a suffix (", a type of bird"). A prefix ending in an article (the
    fine-grained datasets' "a photo of a", made for class names) loses it before a sentence, which brings
    its own determiner: "a photo of a" + "The jet lands." gives "a photo of the jet lands", as the paper's
    ``"a photo of " + sentence``.
    """
    s = " ".join(sentence.split())
    if suffix:
        s = s.rstrip(" .")
    if prefix:
        p = prefix.strip()
        s = re.sub(r"^(The|A|An) ", lambda m: m.group(1).lower() + " ", s)
        if s:
            p = re.sub(r"\s+(a|an|the)$", "", p, flags=re.IGNORECASE)
        s = f"{p} {s}" if s else p
    return f"{s}{suffix}"


def _canon(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.cache
def _load() -> dict[str, DatasetSpec]:
    raw = json.loads(resources.files("synthdata.prompts").joinpath("data/datasets.json").read_text("utf-8"))
    specs = {}
    for name, d in raw["datasets"].items():
        specs[name] = DatasetSpec(
            name=name,
            classnames=tuple(d["classnames"]),
            templates=tuple(d["templates"]),
            prefix=d["prefix"],
            suffix=d.get("suffix", ""),
            aliases=tuple(d.get("aliases", ())),
        )
    return specs


@functools.cache
def _alias_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for name, spec in _load().items():
        for key in (name, *spec.aliases):
            table[_canon(key)] = name
    return table


def list_datasets() -> list[str]:
    """The canonical (lower-case) names of the built-in datasets, in the paper's order."""
    return list(_load())


def find_dataset_by_classes(classnames: Sequence[str]) -> DatasetSpec | None:
    """The built-in dataset whose class list is exactly ``classnames`` (same names, same order), else None.

    Lets a tool recover a dataset's templates from shards whose ``dataset.json`` names another thing
    (a standalone generation run is named after its output folder).
    """
    wanted = tuple(classnames)
    return next((spec for spec in _load().values() if spec.classnames == wanted), None)


def dataset_sources() -> dict[str, dict[str, str]]:
    """Where each built-in list comes from (class names, templates, prefix), as recorded in the data file."""
    raw = json.loads(resources.files("synthdata.prompts").joinpath("data/datasets.json").read_text("utf-8"))
    return {name: dict(d.get("sources", {})) for name, d in raw["datasets"].items()}


def get_dataset(name: str) -> DatasetSpec:
    """The built-in dataset called ``name`` (case-insensitive; aliases like ``fgvc_aircraft``, ``food101``,
    ``imagenet-r`` accepted). Raises :class:`UnknownDatasetError` (a ``ValueError``) listing close matches."""
    key = _canon(str(name))
    table = _alias_table()
    if key in table:
        return _load()[table[key]]
    candidates = sorted(set(table))
    close = difflib.get_close_matches(key, candidates, n=5, cutoff=0.6)  # 0.5 matched "notaset" to "insketch"
    close_names = list(dict.fromkeys(table[c] for c in close))
    hint = f"; did you mean {', '.join(close_names)}?" if close_names else ""
    raise UnknownDatasetError(
        f"unknown dataset {name!r}{hint} Known datasets: {', '.join(list_datasets())} "
        "(or pass your own class list with --classes FILE)"
    )


def load_class_list(path: str | Path) -> tuple[str, ...]:
    """Read class names from a file, in file order.

    * ``.txt`` (or any other suffix): one class per line; blank lines and lines starting with ``#`` ignored.
    * ``.json``: a list of strings, or an object with a ``"classes"`` (or ``"classnames"``) list.
    * ``.csv``: the ``class_name`` or ``name`` column, or the only column (a header row is optional then).

    Raises :class:`ClassListError` (a ``ValueError``) for a missing file, bad syntax, an empty list or a
    repeated class name.
    """
    path = Path(path)
    try:
        text = path.read_text("utf-8-sig")
    except FileNotFoundError as exc:
        raise ClassListError(f"class list {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ClassListError(f"cannot read class list {path}: {exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".json":
        names = _parse_json(text, path)
    elif suffix == ".csv":
        names = _parse_csv(text, path)
    else:
        names = [ln.strip() for ln in text.splitlines()]
        names = [n for n in names if n and not n.startswith("#")]
    names = [" ".join(n.split()) for n in names]
    if not names:
        raise ClassListError(f"class list {path} holds no class names")
    if any(not n for n in names):
        raise ClassListError(f"class list {path} has an empty class name")
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n.lower() in seen:
            raise ClassListError(
                f"class list {path}: {n!r} appears twice (entries {seen[n.lower()]} and {i}); class names must be unique"
            )
        seen[n.lower()] = i
    return tuple(names)


def _parse_json(text: str, path: Path) -> list[str]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClassListError(f"class list {path} is not valid JSON: {exc}") from exc
    if isinstance(obj, dict):
        for key in ("classes", "classnames", "class_names"):
            if key in obj:
                obj = obj[key]
                break
        else:
            raise ClassListError(f'class list {path}: a JSON object needs a "classes" list')
    if not isinstance(obj, list) or not all(isinstance(x, str) for x in obj):
        raise ClassListError(f"class list {path}: expected a JSON list of strings")
    return [x.strip() for x in obj]


def _parse_csv(text: str, path: Path) -> list[str]:
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise ClassListError(f"class list {path} is not valid CSV: {exc}") from exc
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    for key in ("class_name", "classname", "name"):
        if key in header:
            col = header.index(key)
            return [r[col].strip() if col < len(r) else "" for r in rows[1:]]
    if len(header) == 1:
        body = rows[1:] if header[0] in ("class", "classes", "label") else rows
        return [r[0].strip() for r in body]
    raise ClassListError(
        f"class list {path}: a CSV with several columns needs a 'class_name' or 'name' column (found {rows[0]})"
    )
