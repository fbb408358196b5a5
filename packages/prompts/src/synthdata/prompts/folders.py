"""The names a built-in dataset's class folders go by, for matching an ImageFolder's folders to its classes.

Each class is known by its registry name, the paper's head name where that differs (CoOp's year-first Cars,
SUN397's reversed paths, Oxford's flower names) and, where the dataset's release names its folders otherwise,
that folder name (EuroSAT's ``AnnualCrop``, Caltech's ``Faces_easy`` and ``001.ak47``, ImageNet's WordNet ids;
``data/folders.json``, written by ``scripts/build_folders.py``). ``synthdata.tune`` compares them case-,
space- and punctuation-blind, so ``cheese_plate`` or ``Abyssinian`` need no entry of their own.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from synthdata.prompts._registry import get_dataset
from synthdata.prompts.paper import PAPER, head_text


@functools.cache
def _native() -> dict[str, list[str]]:
    text = resources.files("synthdata.prompts").joinpath("data/folders.json").read_text("utf-8")
    return json.loads(text)["datasets"]


def folder_names(dataset: str) -> list[list[str]]:
    """For each class of ``dataset`` (class order), the names its folder may have, registry name first."""
    spec = get_dataset(dataset)
    paper, _ = head_text(spec.name, PAPER)
    native = _native().get(spec.name)
    out = []
    for i, name in enumerate(spec.classnames):
        names = [name, paper[i], *([native[i]] if native is not None else [])]
        out.append(list(dict.fromkeys(names)))
    return out
