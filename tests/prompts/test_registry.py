"""The built-in dataset registry: names, counts, templates, prefixes, aliases and errors."""

import dataclasses

import pytest

from synthdata.prompts import (
    DatasetSpec,
    UnknownDatasetError,
    apply_domain,
    dataset_sources,
    find_dataset_by_classes,
    get_dataset,
    list_datasets,
)

EXPECTED_COUNTS = {
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


def test_list_datasets_is_the_papers_17_in_order():
    assert list_datasets() == list(EXPECTED_COUNTS)


@pytest.mark.parametrize("name", list(EXPECTED_COUNTS))
def test_counts_templates_and_prefix(name):
    spec = get_dataset(name)
    assert isinstance(spec, DatasetSpec)
    assert spec.name == name
    assert len(spec.classnames) == EXPECTED_COUNTS[name] == spec.num_classes
    assert isinstance(spec.classnames, tuple) and isinstance(spec.templates, tuple)
    assert all(isinstance(c, str) and c == c.strip() and c for c in spec.classnames)
    assert spec.templates, name
    for t in spec.templates:
        assert t.count("{}") == 1, (name, t)
        t.format("x")  # a valid format string with one positional field
    assert isinstance(spec.prefix, str) and spec.prefix.strip()
    # names are unique except the two repeats OpenAI's ImageNet list has (missile, sunglasses)
    repeats = len(spec.classnames) - len(set(spec.classnames))
    assert repeats == (2 if name.startswith("imagenet") and name != "imagenet_r" else 0)


def test_spec_is_frozen():
    spec = get_dataset("cifar10")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("CIFAR10", "cifar10"),
        ("cifar-100", "cifar100"),
        ("fgvc_aircraft", "aircraft"),
        ("FGVC-Aircraft", "aircraft"),
        ("oxford_pets", "pets"),
        ("food101", "food"),
        ("Food-101", "food"),
        ("imagenet-r", "imagenet_r"),
        ("ImageNet-Sketch", "imagenet_sketch"),
        ("stanford_cars", "cars"),
        ("flowers102", "flowers"),
        ("CUB_200_2011", "cub"),
        ("EuroSAT", "eurosat"),
        ("SUN397", "sun397"),
        ("describable_textures", "dtd"),
    ],
)
def test_aliases(alias, name):
    assert get_dataset(alias).name == name


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="cifar10") as info:
        get_dataset("cifar11")
    assert isinstance(info.value, UnknownDatasetError)
    assert "did you mean" in str(info.value)
    with pytest.raises(UnknownDatasetError, match="Known datasets"):
        get_dataset("zzzzzz")
    with pytest.raises(UnknownDatasetError) as info:  # nothing close: no far-fetched suggestion
        get_dataset("notaset")
    assert "did you mean" not in str(info.value)


def test_known_paper_details():
    assert get_dataset("eurosat").prefix == "a centered satellite photo of"
    assert get_dataset("eurosat").classnames[0] == "annual crop land"
    assert get_dataset("cub").suffix == ", a type of bird"
    assert get_dataset("birdsnap").suffix == ", a type of bird"
    assert get_dataset("aircraft").suffix == ", a type of aircraft"
    assert get_dataset("cifar10").classnames == (
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    )
    assert "background" not in get_dataset("caltech101").classnames
    assert get_dataset("caltech256").classnames[-1] == "clutter"
    imagenet = get_dataset("imagenet")
    assert imagenet.classnames[0] == "tench" and len(imagenet.templates) == 80
    assert get_dataset("imagenet_sketch").classnames == imagenet.classnames
    assert set(get_dataset("imagenet_r").classnames) <= set(imagenet.classnames)
    assert get_dataset("imagenet_r").classnames[:2] == ("goldfish", "great white shark")


def test_sources_recorded_for_every_dataset():
    sources = dataset_sources()
    assert set(sources) == set(list_datasets())
    for name, src in sources.items():
        assert {"classnames", "templates", "prefix"} <= set(src), name


def test_apply_domain():
    assert apply_domain("The dog runs.", "a photo of", "") == "a photo of the dog runs."
    assert apply_domain("A gull flies.", "a photo of", ", a type of bird") == "a photo of a gull flies, a type of bird"
    assert apply_domain("forest  trees", "", "") == "forest trees"
    # a prefix made for class names ("a photo of a {}") does not double the sentence's article
    aircraft = get_dataset("aircraft")
    assert aircraft.domain_prompt("The jet lands.") == "a photo of the jet lands, a type of aircraft"
    assert aircraft.domain_prompt("A 707-320 on the runway") == "a photo of a 707-320 on the runway, a type of aircraft"
    assert apply_domain("Dogs play.", "a photo of an", "") == "a photo of Dogs play."
    assert apply_domain("", "a photo of a", "") == "a photo of a"
    assert apply_domain("cat", "a", "") == "a cat"
    spec = get_dataset("eurosat")
    assert spec.domain_prompt("river in a valley") == "a centered satellite photo of river in a valley"


def test_every_builtin_class_name_is_found_in_sentences_naming_it():
    from synthdata.prompts.le import contains_class, keyword_input

    for name in list_datasets():
        for c in get_dataset(name).classnames:
            for sentence in (c, keyword_input(c), f"Two {c.lower()}s in a field."):
                assert contains_class(sentence, c), (name, c, sentence)


def test_find_dataset_by_classes():
    eurosat = get_dataset("eurosat")
    assert find_dataset_by_classes(list(eurosat.classnames)) is eurosat
    assert find_dataset_by_classes(list(eurosat.classnames)[::-1]) is None  # order is the class index
    assert find_dataset_by_classes(["dog", "cat"]) is None
