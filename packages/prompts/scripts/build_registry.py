"""Regenerate ``src/synthdata/prompts/data/datasets.json`` from public class-name and template lists.

Not part of the installed package: a maintainer's script, kept so the JSON can be rebuilt and audited.
Every list comes from a published source (see docs/prompts.md for the table); none is typed by hand
except the two transcriptions under ``sources/`` (each file names where it was copied from).

Inputs:
  * ``open_clip.zero_shot_metadata`` (installed): OpenAI's ImageNet class names and 80 templates.
  * ``timm`` (installed): ``timm/data/_info/imagenet_r_indices.txt`` (the 200 ImageNet-R classes).
  * the ``clip-benchmark`` 1.6.2 wheel, unpacked (``--clip-benchmark DIR``): CLIP's class names for
    Caltech101, Flowers102 and Oxford Pets, and CLIP's per-dataset zero-shot templates.
  * the ``mmpretrain`` 1.2.0 wheel, unpacked (``--mmpretrain DIR``): CIFAR-10/100, CUB-200, FGVC Aircraft,
    Stanford Cars and DTD class names in the datasets' own index order.
  * the ``tensorflow-datasets`` 4.9.10 wheel, unpacked (``--tfds DIR``): SUN397 and Food-101 label files.
  * ``sources/birdsnap_clip.txt`` and ``sources/caltech256_folders.txt`` (transcribed, see their headers).

Usage (from the repository root)::

    pip download --no-deps -d /tmp/w clip-benchmark==1.6.2 mmpretrain==1.2.0 tensorflow-datasets==4.9.10
    (cd /tmp/w && for f in *.whl; do unzip -q -o "$f"; done)
    uv run python packages/prompts/scripts/build_registry.py --clip-benchmark /tmp/w --mmpretrain /tmp/w --tfds /tmp/w
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "src" / "synthdata" / "prompts" / "data" / "datasets.json"

EXPECTED = {
    "cifar10": 10,
    "cifar100": 100,
    "caltech101": 101,
    "caltech256": 257,
    "imagenet": 1000,
    "sun397": 397,
    "aircraft": 100,
    "birdsnap": 500,
    "cars": 196,
    "cub": 200,
    "flowers": 102,
    "food": 101,
    "pets": 37,
    "dtd": 47,
    "eurosat": 10,
    "imagenet_sketch": 1000,
    "imagenet_r": 200,
}

# The EuroSAT names of the paper's code (src/glide/glide_fsl.py, CoOp's names), lower-cased.
EUROSAT_PAPER = [
    "annual crop land",
    "forest",
    "herbaceous vegetation land",
    "highway or road",
    "industrial buildings",
    "pasture land",
    "permanent crop land",
    "residential buildings",
    "river",
    "sea or lake",
]


def _read_txt(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def _mmpretrain_categories(root: Path) -> dict[str, tuple[str, ...]]:
    tree = ast.parse((root / "mmpretrain" / "datasets" / "categories.py").read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = tuple(ast.literal_eval(node.value))
    return out


def _clip_templates(raw: list[str]) -> list[str]:
    # clip_benchmark writes CLIP's templates with "{c}"; we keep CLIP's "{}" form.
    return [t.replace("{c}", "{}") for t in raw]


def _caltech256_name(folder: str) -> str:
    name = re.sub(r"-101$", "", folder)
    fixes = {"faces-easy": "face", "airplanes": "airplane", "leopards": "leopard", "motorbikes": "motorbike",
             "car-side": "car side", "ak47": "AK-47", "t-shirt": "t-shirt", "yo-yo": "yo-yo",
             "tower-pisa": "leaning tower of pisa", "head-phones": "headphones", "joy-stick": "joystick",
             "dumb-bell": "dumbbell", "light-house": "lighthouse", "cd": "CD", "vcr": "VCR", "ipod": "iPod",
             "pci-card": "PCI card", "palm-pilot": "Palm Pilot", "pez-dispenser": "PEZ dispenser",
             "cartman": "Eric Cartman", "homer-simpson": "Homer Simpson", "jesus-christ": "Jesus Christ",
             "superman": "Superman", "mars": "Mars", "saturn": "Saturn", "eiffel-tower": "Eiffel Tower",
             "golden-gate-bridge": "Golden Gate Bridge", "segway": "Segway"}
    if name in fixes:
        return fixes[name]
    return name.replace("-", " ")


def _add(d: dict[str, dict], name, classes, templates, prefix, suffix, aliases, sources) -> None:
    assert len(classes) == EXPECTED[name], (name, len(classes))
    # OpenAI's ImageNet names repeat two (657/744 "missile", 836/837 "sunglasses"); kept as CLIP has them.
    assert len(set(classes)) == len(classes) or name.startswith("imagenet"), name
    d[name] = {
        "classnames": list(classes),
        "templates": list(templates),
        "prefix": prefix,
        "suffix": suffix,
        "aliases": aliases,
        "sources": sources,
    }


def _load_sources(clip_benchmark: Path, mmpretrain: Path, tfds: Path) -> dict:
    """Every list the registry is built from, keyed by what the ``_add_*`` functions read."""
    import timm
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

    cb = clip_benchmark / "clip_benchmark" / "datasets"
    cb_names = json.loads((cb / "en_classnames.json").read_text())
    cb_tmpl = {k: _clip_templates(v) for k, v in json.loads((cb / "en_zeroshot_classification_templates.json").read_text()).items()}
    mm = _mmpretrain_categories(mmpretrain)
    tf_ic = tfds / "tensorflow_datasets" / "image_classification"
    timm_info = Path(timm.__file__).parent / "data" / "_info"
    assert cb_names["caltech101"][0] == "background" and mm["CALTECH101_CATEGORIES"][0] == "BACKGROUND_Google"
    sun = [re.sub(r"^/[a-z]/", "", line).replace("/", " ").replace("_", " ") for line in _read_txt(tf_ic / "sun397_labels.txt")]
    return {
        "cb_names": cb_names,
        "cb_tmpl": cb_tmpl,
        "mm": mm,
        "food": [c.replace("_", " ") for c in _read_txt(tf_ic / "food-101_classes.txt")],
        "sun": sun,
        "imagenet": list(IMAGENET_CLASSNAMES),
        "imagenet_templates": _render_templates(OPENAI_IMAGENET_TEMPLATES),
        "r_indices": [int(x) for x in _read_txt(timm_info / "imagenet_r_indices.txt")],
    }


def build(clip_benchmark: Path, mmpretrain: Path, tfds: Path) -> dict:
    """The registry's ``datasets`` mapping, every entry checked against ``EXPECTED``."""
    src = _load_sources(clip_benchmark, mmpretrain, tfds)
    d: dict[str, dict] = {}
    _add_general(d, src)
    _add_fine_grained(d, src)
    _add_imagenet_variants(d, src)
    for name, spec in d.items():
        for t in spec["templates"]:
            assert t.count("{}") == 1, (name, t)
    return d


def _add_general(d: dict[str, dict], src: dict) -> None:
    mm, cb_tmpl, imagenet, imagenet_templates = src["mm"], src["cb_tmpl"], src["imagenet"], src["imagenet_templates"]
    caltech_clip, sun = src["cb_names"]["caltech101"], src["sun"]

    def add(*args):
        _add(d, *args)

    add("cifar10", mm["CIFAR10_CATEGORIES"], cb_tmpl["cifar10"], "a photo of", "",
        ["cifar-10", "cifar_10"],
        {"classnames": "CIFAR-10 batches.meta (via mmpretrain 1.2.0 categories.py); identical to CLIP data/prompts.md",
         "templates": "CLIP data/prompts.md (via clip-benchmark 1.6.2)", "prefix": "generic photo prefix"})
    add("cifar100", [c.replace("_", " ") for c in mm["CIFAR100_CATEGORIES"]], cb_tmpl["cifar100"], "a photo of", "",
        ["cifar-100", "cifar_100"],
        {"classnames": "CIFAR-100 fine labels (via mmpretrain 1.2.0), '_' -> ' ' as in CLIP data/prompts.md",
         "templates": "CLIP data/prompts.md (via clip-benchmark 1.6.2)", "prefix": "generic photo prefix"})
    add("caltech101", caltech_clip[1:], cb_tmpl["caltech101"], "a photo of", "",
        ["caltech-101", "caltech_101"],
        {"classnames": "CLIP data/prompts.md Caltech101 (via clip-benchmark 1.6.2) without CLIP's 'background' "
                       "class: the 101 object categories in torchvision/paper order (sorted folders minus BACKGROUND_Google)",
         "templates": "CLIP data/prompts.md (via clip-benchmark 1.6.2)", "prefix": "generic photo prefix"})
    add("caltech256", [_caltech256_name(f) for f in _read_txt(HERE / "sources" / "caltech256_folders.txt")],
        cb_tmpl["caltech101"], "a photo of", "", ["caltech-256", "caltech_256"],
        {"classnames": "Caltech-256 folder names 001..257 (incl. 257.clutter, as torchvision.datasets.Caltech256 "
                       "and the paper's caltech.py), '-101' suffixes dropped, '-' -> ' ', a few proper names cased",
         "templates": "CLIP's Caltech101 templates (CLIP publishes none for Caltech-256)", "prefix": "generic photo prefix"})
    add("imagenet", imagenet, imagenet_templates, "a photo of", "", ["imagenet1k", "imagenet-1k", "in1k", "ilsvrc2012"],
        {"classnames": "OpenAI CLIP ImageNet class names (open_clip.zero_shot_metadata)",
         "templates": "OpenAI's 80 ImageNet templates (open_clip.zero_shot_metadata)", "prefix": "generic photo prefix"})
    add("sun397", sun, cb_tmpl["sun397"], "a photo of", "", ["sun-397", "sun"],
        {"classnames": "SUN397 category paths (tensorflow-datasets 4.9.10 sun397_labels.txt), '/x/' dropped, "
                       "'/' and '_' -> ' ' as in CLIP data/prompts.md",
         "templates": "CLIP data/prompts.md (via clip-benchmark 1.6.2)", "prefix": "generic photo prefix"})


def _add_fine_grained(d: dict[str, dict], src: dict) -> None:
    mm, cb_tmpl, cb_names = src["mm"], src["cb_tmpl"], src["cb_names"]
    bird_t = ["a photo of a {}, a type of bird."]

    def add(*args):
        _add(d, *args)

    add("aircraft", mm["FGVCAIRCRAFT_CATEGORIES"], cb_tmpl["fgvc_aircraft"], "a photo of a", ", a type of aircraft",
        ["fgvc_aircraft", "fgvc-aircraft", "fgvcaircraft"],
        {"classnames": "FGVC-Aircraft variants.txt (via mmpretrain 1.2.0); identical to CLIP data/prompts.md",
         "templates": "CLIP data/prompts.md (via clip-benchmark 1.6.2)",
         "prefix": "paper's aircraft_template 'a photo of a {}, a type of aircraft.' (classifier-tuning/src/templates)"})
    add("birdsnap", _read_txt(HERE / "sources" / "birdsnap_clip.txt"), ["a photo of a {}, a type of bird."],
        "a photo of", ", a type of bird", ["birdsnap500"],
        {"classnames": "CLIP data/prompts.md Birdsnap (transcribed to sources/birdsnap_clip.txt)",
         "templates": "CLIP data/prompts.md", "prefix": "paper's glide_zsl.py: 'a photo of ' + sentence + ', a type of bird'"})
    add("cars", mm["STANFORDCARS_CATEGORIES"], cb_tmpl["cars"], "a photo of a", ", a type of car",
        ["stanford_cars", "stanford-cars", "stanfordcars", "cars196"],
        {"classnames": "Stanford Cars devkit cars_meta (via mmpretrain 1.2.0)",
         "templates": "CLIP data/prompts.md (via clip-benchmark 1.6.2)",
         "prefix": "by analogy with the paper's fine-grained templates ('..., a type of X')"})
    add("cub", [c.replace("_", " ") for c in mm["CUB_CATEGORIES"]], bird_t, "a photo of", ", a type of bird",
        ["cub200", "cub-200", "cub_200", "cub-200-2011", "cub_200_2011", "caltech_birds"],
        {"classnames": "CUB-200-2011 classes.txt (via mmpretrain 1.2.0), '_' -> ' '",
         "templates": "the paper's birds_template", "prefix": "paper's glide_zsl.py: 'a photo of ' + sentence + ', a type of bird'"})
    add("flowers", cb_names["flowers"], cb_tmpl["flowers"], "a photo of a", ", a type of flower",
        ["flowers102", "flowers-102", "oxford_flowers", "oxford_flowers102", "oxford-flowers"],
        {"classnames": "CLIP data/prompts.md Flowers102 (via clip-benchmark 1.6.2)",
         "templates": "CLIP data/prompts.md (via clip-benchmark 1.6.2)", "prefix": "paper's flowers_template"})
    add("food", src["food"], cb_tmpl["food101"],
        "a photo of", ", a type of food", ["food101", "food-101", "food_101"],
        {"classnames": "Food-101 classes.txt (tensorflow-datasets 4.9.10), '_' -> ' ' as in CLIP data/prompts.md",
         "templates": "CLIP data/prompts.md (via clip-benchmark 1.6.2)", "prefix": "paper's food_template"})
    add("pets", cb_names["pets"], cb_tmpl["pets"], "a photo of a", ", a type of pet",
        ["oxford_pets", "oxford-pets", "oxfordpets", "oxford_iiit_pet", "oxford-iiit-pet", "pets37"],
        {"classnames": "CLIP data/prompts.md OxfordPets (via clip-benchmark 1.6.2)",
         "templates": "CLIP data/prompts.md (via clip-benchmark 1.6.2)", "prefix": "paper's pets_template"})
    add("dtd", mm["DTD_CATEGORIES"], cb_tmpl["dtd"], "a photo of a", " texture",
        ["describable_textures", "describabletextures", "textures"],
        {"classnames": "DTD categories (via mmpretrain 1.2.0); identical to CLIP data/prompts.md",
         "templates": "CLIP data/prompts.md (via clip-benchmark 1.6.2)", "prefix": "paper's dtd_template '{} texture.'"})
    add("eurosat", EUROSAT_PAPER, cb_tmpl["eurosat"], "a centered satellite photo of", "", ["euro_sat", "euro-sat"],
        {"classnames": "the paper's EuroSAT names (src/glide/glide_fsl.py, CoOp's), lower-cased",
         "templates": "CLIP data/prompts.md (via clip-benchmark 1.6.2)",
         "prefix": "paper's glide_zsl.py: 'a centered satellite photo of ' + sentence"})


def _add_imagenet_variants(d: dict[str, dict], src: dict) -> None:
    imagenet, imagenet_templates = src["imagenet"], src["imagenet_templates"]

    def add(*args):
        _add(d, *args)

    add("imagenet_sketch", imagenet, imagenet_templates, "a sketch of", "",
        ["imagenet-sketch", "imagenetsketch", "sketch", "in-sketch"],
        {"classnames": "ImageNet's (OpenAI CLIP names)", "templates": "OpenAI's 80 ImageNet templates",
         "prefix": "paper's glide_zsl.py: 'sketch of ' + sentence (with an article)"})
    add("imagenet_r", [imagenet[i] for i in src["r_indices"]], imagenet_templates, "a rendition of", "",
        ["imagenet-r", "imagenetr", "imagenet_rendition", "in-r"],
        {"classnames": "OpenAI CLIP ImageNet names at ImageNet-R's 200 class indices (timm imagenet_r_indices.txt)",
         "templates": "OpenAI's 80 ImageNet templates",
         "prefix": "ours: ImageNet-R holds renditions (art, cartoons, ...); the paper gives none"})


def _render_templates(templates) -> list[str]:
    """open_clip stores the templates as lambdas; render each with a marker and turn it into a format string."""
    marker = "\x00"
    return [t(marker).replace(marker, "{}") for t in templates]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip-benchmark", type=Path, required=True)
    p.add_argument("--mmpretrain", type=Path, required=True)
    p.add_argument("--tfds", type=Path, required=True)
    args = p.parse_args()
    data = build(args.clip_benchmark, args.mmpretrain, args.tfds)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"schema": 1, "datasets": data}, indent=1, ensure_ascii=False) + "\n")
    for name, spec in data.items():
        print(f"{name:16s} {len(spec['classnames']):5d} classes {len(spec['templates']):3d} templates")


if __name__ == "__main__":
    main()
