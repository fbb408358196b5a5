"""The text of each built-in dataset by recipe: the registry's own (``default``) or the paper's released code's
(``paper``), for the zero-shot head, the CLIP filter and Language Enhancement.

One source for every command: ``synth-tune`` builds its head from :func:`head_text`, the filter scores with
:func:`filter_text`, ``synth-prompts`` feeds Language Enhancement :func:`le_labels` and wraps its sentences
in :func:`paper_domain`. The paper's text is ``data/paper.json``, written by ``scripts/build_paper.py`` from
the official code's lists (``scripts/sources/paper/``); ``docs/reproduce.md`` lists every difference and why.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from synthdata.prompts._registry import get_dataset

#: The recipe whose text is the official code's; every other recipe (``default``, ``smoke``) uses the registry's.
PAPER = "paper"
#: The article the official Language Enhancement labels start with (``src/LE.py``: ``'a Annual Crop Land'``).
PAPER_LABEL_ARTICLE = "a "


@functools.cache
def _paper() -> dict[str, Any]:
    text = resources.files("synthdata.prompts").joinpath("data/paper.json").read_text("utf-8")
    return json.loads(text)["datasets"]


def _entry(dataset: str) -> tuple[Any, dict[str, Any]]:
    spec = get_dataset(dataset)
    return spec, _paper()[spec.name]


def head_text(dataset: str, recipe: str = "default") -> tuple[list[str], list[str]]:
    """``(class_names, templates)`` of the zero-shot head of ``dataset`` (a built-in name or alias).

    ``default``: the registry's class names and CLIP template ensemble. ``paper``: the official code's, e.g.
    EuroSAT ``["Annual Crop Land", ...]`` with ``["a centered satellite photo of {}."]``, Stanford Cars with
    the year first (``"2000 AM General Hummer SUV"``) and its 8 templates. Class names are always in the
    registry's class order. Raises :class:`~synthdata.prompts.UnknownDatasetError` for an unknown dataset.
    """
    spec, entry = _entry(dataset)
    if recipe != PAPER:
        return list(spec.classnames), list(spec.templates)
    head = entry["head"]
    return list(head["classnames"] or spec.classnames), list(head["templates"])


def filter_text(dataset: str, recipe: str = "default") -> tuple[list[str], list[str]]:
    """``(class_names, templates)`` the CLIP filter scores images against, in the registry's class order.

    ``default``: the head's text (each class the mean of its template ensemble). ``paper``: one prompt a
    class, as the official filter (``select_glide_ims_by_clip.py``) writes it, e.g. EuroSAT's
    ``"a centered satellite photo of a Annual Crop Land."``: ``(["a Annual Crop Land", ...],
    ["a centered satellite photo of {}."])``.
    """
    spec, entry = _entry(dataset)
    if recipe != PAPER:
        return list(spec.classnames), list(spec.templates)
    text = entry["filter"]
    return list(text["classnames"] or spec.classnames), list(text["templates"])


def le_labels(dataset: str, recipe: str = "default") -> list[str]:
    """What Language Enhancement is given for each class of ``dataset``, in class order.

    ``default``: the class names. ``paper``: the official label as typed, an article and the name
    (``src/LE.py``: ``"a Annual Crop Land"``, ``"a Industrial Building"``).
    """
    spec, entry = _entry(dataset)
    if recipe != PAPER:
        return list(spec.classnames)
    labels = entry["le"]["labels"]
    if labels is None:
        labels = [PAPER_LABEL_ARTICLE + n for n in head_text(spec.name, PAPER)[0]]
    return list(labels)


def paper_labels(classnames: Sequence[str], dataset: str | None = None) -> list[str]:
    """The paper's Language Enhancement labels for ``classnames``: :func:`le_labels` of ``dataset`` when its
    classes are exactly the built-in dataset's, else an article and each name as given."""
    if dataset is not None and tuple(classnames) == get_dataset(dataset).classnames:
        return le_labels(dataset, PAPER)
    return [PAPER_LABEL_ARTICLE + n for n in classnames]


def paper_domain(dataset: str | None) -> tuple[str, str]:
    """``(prefix, suffix)`` the official generation script puts around each sentence: EuroSAT's
    ``"a centered satellite photo of"`` and nothing for every other dataset or a class list (``None``)."""
    if dataset is None:
        return "", ""
    _, entry = _entry(dataset)
    return entry["le"]["prefix"], ""


def text_sources(dataset: str) -> dict[str, Any]:
    """Where each part of the paper's text of ``dataset`` comes from (file, variable, and our choices)."""
    _, entry = _entry(dataset)
    return {part: entry[part]["sources"] for part in ("head", "filter", "le")}
