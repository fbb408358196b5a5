"""Regenerate ``src/synthdata/prompts/data/folders.json``: the class folder names of the datasets' own releases
where they differ from the class names (``synthdata.prompts.folder_names`` adds them to each class's names, so
an evaluation ImageFolder laid out as the dataset ships maps to the right classes by name).

Not part of the installed package: a maintainer's script. Inputs, in class order:

* EuroSAT: the RGB release's folders (``sources/paper/official.json``, from CoOp's ``datasets/eurosat.py``);
* Caltech101: ``101_ObjectCategories`` without ``BACKGROUND_Google`` (``sources/paper/caltech101_folders.txt``);
* Caltech-256: ``256_ObjectCategories`` (``sources/caltech256_folders.txt``, as ``NNN.name``);
* ImageNet, ImageNet-Sketch, ImageNet-R: the WordNet ids of ``timm`` (installed) ``data/_info``.

Other datasets' folders are their class names up to case and punctuation, which the matching ignores.

Usage (from the repository root)::

    uv run python packages/prompts/scripts/build_folders.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "src" / "synthdata" / "prompts" / "data"


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text("utf-8").splitlines() if ln.strip() and not ln.startswith("#")]


def build() -> dict:
    import timm

    info = Path(timm.__file__).parent / "data" / "_info"
    official = json.loads((HERE / "sources" / "paper" / "official.json").read_text("utf-8"))
    imagenet = _lines(info / "imagenet_synsets.txt")
    caltech256 = _lines(HERE / "sources" / "caltech256_folders.txt")
    folders = {
        "caltech101": [n.removeprefix("a ").replace(" ", "_") for n in _lines(HERE / "sources" / "paper" / "caltech101_folders.txt")],
        "caltech256": [f"{i:03d}.{name}" for i, name in enumerate(caltech256, start=1)],
        "imagenet": imagenet,
        "eurosat": official["eurosat"]["folders"]["names"],
        "imagenet_sketch": imagenet,
        "imagenet_r": _lines(info / "imagenet_r_synsets.txt"),
    }
    registry = json.loads((DATA / "datasets.json").read_text("utf-8"))["datasets"]
    for name, names in folders.items():
        assert len(names) == len(registry[name]["classnames"]) == len(set(names)), name
    r_indices = [int(x) for x in _lines(info / "imagenet_r_indices.txt")]
    assert folders["imagenet_r"] == [imagenet[i] for i in r_indices]
    return {"schema": 1, "datasets": folders}


def main() -> None:
    (DATA / "folders.json").write_text(json.dumps(build(), indent=1) + "\n", "utf-8")


if __name__ == "__main__":
    main()
