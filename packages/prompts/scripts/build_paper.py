"""Regenerate ``src/synthdata/prompts/data/paper.json``: the text the paper's released code uses per dataset.

Not part of the installed package: a maintainer's script, kept so the JSON can be rebuilt and audited. It
reads the registry (``data/datasets.json``, built by ``build_registry.py``) for each dataset's classes in
their standard order, and the official code's lists and templates transcribed under ``sources/paper/`` (each
file names the file and variable of CVMI-Lab/SyntheticData it comes from). Lists the official code keeps in
another order are matched to the registry's classes by name, and the match is checked to be one to one.

For every built-in dataset it writes three texts (``docs/reproduce.md`` explains each choice):

* ``head``: the class names and templates of the zero-shot head (``--template`` of the official commands);
* ``filter``: the one prompt a class of the official CLIP filter (``select_glide_ims_by_clip.py``);
* ``le``: what the official Language Enhancement (``src/LE.py``) is given for each class, and the prefix its
  generation script (``src/glide/glide_zsl.py``) puts before each sentence.

A class-name list equal to the registry's is written as ``null``; so are LE labels that are ``"a "`` + the
head's class names.

Usage (from the repository root)::

    uv run python packages/prompts/scripts/build_paper.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources" / "paper"
DATA = HERE.parent / "src" / "synthdata" / "prompts" / "data"
COMMIT = "e47c27de798da0717084c67f796cd74559107c61"

# Where the Oxford flower names the official code uses differ from CLIP's (the registry's), by class index.
FLOWERS_NOT_CLIP = {15: "globe-flower", 59: "pink-yellow dahlia", 92: "ball moss"}
EUROSAT_PREFIX = "a centered satellite photo of"


def _lines(path: Path) -> list[str]:
    return [ln.rstrip("\n") for ln in path.read_text("utf-8").splitlines() if ln.strip() and not ln.startswith("#")]


def _index_folder_order(n: int, first: int) -> list[int]:
    """Class indices in the sorted order of folders named by index as text ("0", "1", "10", "100", ...)."""
    return [int(s) - first for s in sorted(str(i) for i in range(first, n + first))]


def _from_folder_order(official: list[str], n: int, first: int) -> list[str]:
    """``official`` (listed in index-named folder order) put in class-index order."""
    assert len(official) == n, (len(official), n)
    out: list[str | None] = [None] * n
    for name, idx in zip(official, _index_folder_order(n, first), strict=True):
        out[idx] = name
    return out  # type: ignore[return-value]


def _year_first(name: str) -> str:
    *words, year = name.split(" ")
    assert re.fullmatch(r"(19|20)\d\d", year), name
    return " ".join([year, *words])


def _words(name: str) -> list[str]:
    return sorted(name.split())


def _cars(registry: list[str]) -> list[str]:
    names = _from_folder_order(_lines(SOURCES / "cars_coop.txt"), len(registry), 0)
    for ours, theirs in zip(registry, names, strict=True):
        assert _year_first(ours) == theirs, (ours, theirs)
    return names


def _sun397(registry: list[str]) -> list[str]:
    names = _from_folder_order(_lines(SOURCES / "sun397_coop.txt"), len(registry), 0)
    for ours, theirs in zip(registry, names, strict=True):
        assert _words(ours) == _words(theirs), (ours, theirs)
    return names


def _flowers(registry: list[str]) -> list[str]:
    typed = _from_folder_order(_lines(SOURCES / "flowers.txt"), len(registry), 1)
    names = [t.removeprefix("a ") for t in typed]
    for i, (ours, theirs) in enumerate(zip(registry, names, strict=True)):
        assert theirs == FLOWERS_NOT_CLIP.get(i, ours), (i, ours, theirs)
    return names


def _caltech101_typed(registry: list[str]) -> list[str]:
    typed = _lines(SOURCES / "caltech101_folders.txt")
    assert len(typed) == len(registry) and all(t.startswith("a ") for t in typed)
    return typed


def _caltech256_folders() -> list[str]:
    return _lines(HERE / "sources" / "caltech256_folders.txt")


def _head(name: str, reg: dict, official: dict) -> dict:
    templates = official["templates"]
    classes = reg["classnames"]
    head_names: list[str] | None = None
    src_names = "the registry's class names (the official dataset class uses the same list)"
    if name == "eurosat":
        head_names = [v.removeprefix("a ") for v in official["eurosat"]["coop_names"]["names"]]
        src_names = ("CoOp's EuroSAT names (glide_fsl.py eurosat_names_coop, used there as v[2:]); the released "
                     "classifier-tuning code cuts two letters off the first letters of CLIP's EuroSAT list instead (a bug)")
    elif name == "sun397":
        head_names, src_names = _sun397(classes), "transfer_datasets.py SUN397_names_coop, in class-index order"
    elif name == "cars":
        head_names, src_names = _cars(classes), "transfer_datasets.py cars_names_coop (year first), in class-index order"
    elif name == "flowers":
        head_names = _flowers(classes)
        src_names = "transfer_datasets.py flowers_names without their article, in class-index order"
    elif name == "pets":
        head_names, src_names = [c.lower() for c in classes], "transfer_datasets.py pets_names (lower case)"
    elif name == "caltech256":
        head_names, src_names = _caltech256_folders(), "transfer_datasets.py caltech256_names[2:]: the folder names"
    elif name == "caltech101":
        src_names = ("the registry's (CLIP's without 'background'); the released code keeps CLIP's 102 names with "
                     "'background' for 101 classes, shifting every name after 'ant' by one (a bug)")
    key = official["head_templates"].get(name)
    if key is None:
        key = "imagenet_template" if name.startswith("imagenet") else "simple_template"
        src_templates = f"{key}: the released code has none for this dataset (our choice)"
    else:
        src_templates = f"{key} (transfer_ds_template.py)"
    return {
        "classnames": head_names,
        "templates": templates[key],
        "sources": {"classnames": src_names, "templates": src_templates},
    }


def _filter(name: str, reg: dict, head: dict, official: dict) -> dict:
    classes = reg["classnames"]
    prompts = official["filter_prompts"]
    if name not in prompts and name.startswith("imagenet"):
        before, after, _ = prompts["imagenet"]
        src = "as imagenet's (commented) line, 'a photo of a ' + name + '.' (our choice)"
        return {"classnames": None, "templates": [f"{before}{{}}{after}"], "sources": src}
    if name not in prompts:
        src = "the released filter has no line for this dataset: the head's names with its first template (our choice)"
        return {"classnames": head["classnames"], "templates": head["templates"][:1], "sources": src}
    before, after, variable = prompts[name]
    names: list[str] | None
    if name == "eurosat":
        names = official["eurosat"]["filter_names"]["names"]
    elif name == "caltech101":
        names = _caltech101_typed(classes)
    elif name == "caltech256":
        names = ["a " + n for n in _caltech256_folders()]
    elif name == "cifar100":
        names = [c.replace(" ", "_") for c in classes]
    elif name in ("imagenet",):
        names = None
    elif name == "aircraft":
        # The commented line reads "a photo of a " + "a 707-320" + ...: a doubled article; the intended text has one.
        names = None
    else:  # sun397, cifar10, cub: the registry's names (SUN397's in path order, not CoOp's) with an article
        names = ["a " + c for c in classes]
    src = f"select_glide_ims_by_clip.py: {before!r} + name + {after!r} over {variable}"
    if name == "aircraft":
        src += " (the names there carry an article too, giving 'a photo of a a 707-320, ...': we drop the doubled article)"
    elif name != "eurosat":
        src += " (commented out there; only EuroSAT's line is active)"
    return {"classnames": names, "templates": [f"{before}{{}}{after}"], "sources": src}


def _le(name: str, reg: dict, head: dict, official: dict) -> dict:
    classes = reg["classnames"]
    head_names = head["classnames"] if head["classnames"] is not None else classes
    if name == "eurosat":
        labels, src = official["eurosat"]["le_labels"]["names"], "src/LE.py labels"
    elif name == "caltech101":
        labels, src = _caltech101_typed(classes), "caltech101_names ('a ' + folder name)"
    elif name == "caltech256":
        labels, src = ["a " + n for n in _caltech256_folders()], "caltech256_names ('a ' + folder name)"
    elif name == "flowers":
        labels, src = ["a " + n for n in head_names], "flowers_names (as typed)"
    elif name in ("sun397", "cub", "dtd", "aircraft", "cifar10", "food", "birdsnap", "cars"):
        labels = ["a " + c for c in classes]
        src = "the official 'a <name>' list of this dataset (transfer_datasets.py / select_glide_ims_by_clip.py)"
    else:
        labels, src = ["a " + c for c in head_names], "'a ' + the head's class name (the released code has no list; our choice)"
    prefix = EUROSAT_PREFIX if name == "eurosat" else ""
    return {
        "labels": labels,
        "prefix": prefix,
        "sources": {
            "labels": src + "; LE.py holds EuroSAT's labels only, each an article and the name",
            "prefix": "glide_zsl.py: 'a centered satellite photo of ' + sentence (the active line)"
            if prefix
            else "glide_zsl.py: only EuroSAT's prefix line is active; the sentence as generated",
        },
    }


def build() -> dict:
    registry = json.loads((DATA / "datasets.json").read_text("utf-8"))["datasets"]
    official = json.loads((SOURCES / "official.json").read_text("utf-8"))
    out: dict[str, dict] = {}
    for name, reg in registry.items():
        head = _head(name, reg, official)
        entry = {"head": head, "filter": _filter(name, reg, head, official), "le": _le(name, reg, head, official)}
        for part in ("head", "filter"):
            names = entry[part]["classnames"]
            if names is not None:
                assert len(names) == len(reg["classnames"]), (name, part)
                if names == reg["classnames"]:
                    entry[part]["classnames"] = None
            assert all(t.count("{}") == 1 for t in entry[part]["templates"]), (name, part)
        assert len(entry["le"]["labels"]) == len(reg["classnames"]), name
        head_names = entry["head"]["classnames"] or reg["classnames"]
        if entry["le"]["labels"] == ["a " + n for n in head_names]:
            entry["le"]["labels"] = None
        out[name] = entry
    return {
        "schema": 1,
        "source": f"CVMI-Lab/SyntheticData@{COMMIT} (He et al., ICLR 2023; Apache-2.0); see scripts/sources/paper/",
        "datasets": out,
    }


def main() -> None:
    data = build()
    (DATA / "paper.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", "utf-8")
    for name, entry in data["datasets"].items():
        head = entry["head"]
        print(f"{name:16s} head {len(head['templates']):2d} templates, names {'own' if head['classnames'] else 'registry'}")


if __name__ == "__main__":
    main()
