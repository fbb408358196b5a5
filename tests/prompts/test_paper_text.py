"""The text of each built-in dataset by recipe (head, filter, Language Enhancement): the registry's for the
default recipe, the released code's (CVMI-Lab/SyntheticData) for ``paper``, and the build script that
writes the latter reproduces the committed file."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from synthdata.prompts import (
    filter_text,
    get_dataset,
    head_text,
    le_labels,
    list_datasets,
    paper_domain,
    paper_labels,
    text_sources,
)

ROOT = Path(__file__).resolve().parents[2]
DATASETS = list_datasets()

COOP_EUROSAT = [
    "Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "Industrial Buildings",
    "Pasture Land", "Permanent Crop Land", "Residential Buildings", "River", "Sea or Lake",
]
LE_PY_EUROSAT = [
    "a Annual Crop Land", "a Forest", "a Herbaceous Vegetation Land", "a Highway or Road", "a Industrial Building",
    "a Pasture Land", "a Permanent Crop Land", "a Residential Building", "a River", "a Sea or Lake",
]
CIFAR_TEMPLATES = [
    "a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.", "a low contrast photo of a {}.",
    "a high contrast photo of a {}.", "a bad photo of a {}.", "a good photo of a {}.", "a photo of a small {}.",
    "a photo of a big {}.", "a photo of the {}.", "a blurry photo of the {}.", "a black and white photo of the {}.",
    "a low contrast photo of the {}.", "a high contrast photo of the {}.", "a bad photo of the {}.",
    "a good photo of the {}.", "a photo of the small {}.", "a photo of the big {}.",
]
CARS_TEMPLATES = [
    "a photo of a {}.", "a photo of the {}.", "a photo of my {}.", "i love my {}!", "a photo of my dirty {}.",
    "a photo of my clean {}.", "a photo of my new {}.", "a photo of my old {}.",
]


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("part", [head_text, filter_text])
def test_every_dataset_has_a_head_and_filter_text_in_both_recipes(dataset, part):
    spec = get_dataset(dataset)
    assert part(dataset) == (list(spec.classnames), list(spec.templates))  # default: the registry, unchanged
    names, templates = part(dataset, "paper")
    assert len(names) == spec.num_classes and all(isinstance(n, str) and n.strip() for n in names)
    assert templates and all(t.count("{}") == 1 for t in templates)
    if not dataset.startswith("imagenet"):  # OpenAI's ImageNet names repeat two ("missile", "sunglasses")
        assert len(set(names)) == len(names)
    assert part(dataset, "smoke") == part(dataset)  # only "paper" has text of its own


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_has_paper_le_labels_and_sources(dataset):
    spec = get_dataset(dataset)
    labels = le_labels(dataset, "paper")
    assert len(labels) == spec.num_classes and all(label.startswith("a ") for label in labels)
    assert le_labels(dataset) == list(spec.classnames)
    prefix, suffix = paper_domain(dataset)
    assert (prefix, suffix) == (("a centered satellite photo of", "") if dataset == "eurosat" else ("", ""))
    sources = text_sources(dataset)
    assert set(sources) == {"head", "filter", "le"} and all(sources.values())


def test_eurosat_paper_text_is_coops_names_with_one_template():
    assert head_text("eurosat", "paper") == (COOP_EUROSAT, ["a centered satellite photo of {}."])
    assert head_text("euro-sat", "paper") == head_text("eurosat", "paper")  # aliases resolve
    names, templates = filter_text("eurosat", "paper")
    assert [templates[0].format(n) for n in names][:2] == [
        "a centered satellite photo of a Annual Crop Land.",
        "a centered satellite photo of a Forest.",
    ]
    assert names == LE_PY_EUROSAT  # the filter's eurosat_names, with the singular "Industrial Building"
    assert le_labels("eurosat", "paper") == LE_PY_EUROSAT
    # the head's names are CoOp's, the registry's spelling of the same classes (CLIP lower-cases its input)
    assert [n.lower() for n in COOP_EUROSAT] == list(get_dataset("eurosat").classnames)


def test_dtd_head_is_texture_with_the_registry_names():
    names, templates = head_text("dtd", "paper")
    assert templates == ["{} texture."]
    assert names == list(get_dataset("dtd").classnames) and names[:3] == ["banded", "blotchy", "braided"]
    assert len(head_text("dtd")[1]) == 8  # the default keeps CLIP's ensemble


def test_cars_head_puts_the_year_first_in_class_order():
    names, templates = head_text("cars", "paper")
    assert templates == CARS_TEMPLATES
    assert names[0] == "2000 AM General Hummer SUV" and names[1] == "2012 Acura RL Sedan"
    registry = get_dataset("cars").classnames
    for ours, paper in zip(registry, names, strict=True):
        *words, year = ours.split(" ")
        assert re.fullmatch(r"\d{4}", year) and paper == " ".join([year, *words])
    assert names[registry.index("Ram C/V Cargo Van Minivan 2012")] == "2012 Ram C/V Cargo Van Minivan"


def test_sun397_head_uses_coops_reversed_names_in_class_order():
    names, templates = head_text("sun397", "paper")
    assert templates == ["a photo of a {}.", "a photo of the {}."]
    registry = list(get_dataset("sun397").classnames)
    expect = {
        "abbey": "abbey",
        "control tower outdoor": "outdoor control tower",
        "wine cellar barrel storage": "barrel storage wine cellar",
        "underwater coral reef": "coral reef underwater",
        "cubicle office": "office cubicle",
        "mountain snowy": "mountain snowy",
    }
    for ours, coop in expect.items():
        assert names[registry.index(ours)] == coop
    assert all(sorted(a.split()) == sorted(b.split()) for a, b in zip(registry, names, strict=True))
    # the filter keeps the path order, with an article, as select_glide_ims_by_clip.py's SUN397_names
    f_names, f_templates = filter_text("sun397", "paper")
    assert f_templates == ["a photo of {}."] and f_names[registry.index("control tower outdoor")] == "a control tower outdoor"


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_head_keeps_the_18_templates(dataset):
    names, templates = head_text(dataset, "paper")
    assert templates == CIFAR_TEMPLATES
    assert names == list(get_dataset(dataset).classnames)


def test_the_other_one_template_heads():
    one = {
        "food": "a photo of a {}, a type of food.",  # the default's CLIP template has no article
        "pets": "a photo of a {}, a type of pet.",
        "flowers": "a photo of a {}, a type of flower.",
        "aircraft": "a photo of a {}, a type of aircraft.",
        "birdsnap": "a photo of a {}, a type of bird.",
        "cub": "a photo of a {}, a type of bird.",
    }
    for dataset, template in one.items():
        assert head_text(dataset, "paper")[1] == [template], dataset
    assert head_text("food")[1] == ["a photo of {}, a type of food."]
    assert head_text("imagenet", "paper")[1][0] == "itap of a {}." and len(head_text("imagenet", "paper")[1]) == 7


def test_caltech_heads_drop_background_and_use_folder_names():
    names, _ = head_text("caltech101", "paper")
    assert "background" not in names and names[8] == "barrel"  # the released code shifts index 8 on by one
    names, _ = head_text("caltech256", "paper")
    assert names[0] == "ak47" and names[14] == "bonsai-101" and names[-1] == "clutter"


def test_flowers_head_uses_the_oxford_names_in_class_order():
    names, _ = head_text("flowers", "paper")
    registry = get_dataset("flowers").classnames
    differ = {i: (a, b) for i, (a, b) in enumerate(zip(registry, names, strict=True)) if a != b}
    assert differ == {
        15: ("globe flower", "globe-flower"),
        59: ("pink and yellow dahlia", "pink-yellow dahlia"),
        92: ("air plant", "ball moss"),
    }


def test_paper_filter_prompts_as_the_official_script_writes_them():
    def prompts(dataset):
        names, (template,) = filter_text(dataset, "paper")
        return [template.format(n) for n in names]

    assert prompts("aircraft")[0] == "a photo of a 707-320, a type of aircraft."  # one article, not "a a"
    assert prompts("cifar100")[1] == "a photo of a aquarium_fish."
    assert prompts("cifar10")[0] == "a photo of a airplane."
    assert prompts("cub")[0] == "a photo of a Black footed Albatross, a type of bird."
    assert prompts("caltech101")[:2] == ["a photo of a Faces.", "a photo of a Faces easy."]
    assert prompts("caltech256")[0] == "a photo of a ak47."
    assert prompts("imagenet")[0] == "a photo of a tench."


def test_paper_labels_of_a_class_list_get_an_article():
    assert paper_labels(["red fox", "Grey Wolf"]) == ["a red fox", "a Grey Wolf"]
    assert paper_labels(list(get_dataset("eurosat").classnames), "eurosat") == LE_PY_EUROSAT
    assert paper_labels(["annual crop land", "forest"], "eurosat") == ["a annual crop land", "a forest"]
    assert paper_domain(None) == ("", "")


@pytest.mark.parametrize("dataset", DATASETS)
def test_folder_names_start_with_the_class_name(dataset):
    from synthdata.prompts import folder_names

    spec = get_dataset(dataset)
    names = folder_names(dataset)
    assert len(names) == spec.num_classes
    assert all(n[0] == c and len(n) == len(set(n)) for n, c in zip(names, spec.classnames, strict=True))


@pytest.mark.parametrize(("script", "data"), [("build_paper", "paper.json"), ("build_folders", "folders.json")])
def test_the_build_script_reproduces_the_committed_file(script, data):
    path = ROOT / "packages" / "prompts" / "scripts" / f"{script}.py"
    spec = importlib.util.spec_from_file_location(script, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads((ROOT / "packages/prompts/src/synthdata/prompts/data" / data).read_text("utf-8"))
    assert module.build() == committed
