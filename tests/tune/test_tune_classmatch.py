"""Evaluation ImageFolders map their folders to classes by name (native folder names, index prefixes, index
names), not by sorted position; a folder that names no class is a one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthdata.prompts import folder_names, get_dataset
from synthdata.tune.classmatch import FolderMismatch, folder_classes, name_key
from synthdata.tune.config import TuneConfig
from synthdata.tune.data import DataError, load_image_set, load_imagefolder
from synthdata.tune.inputs import check_inputs


def _folder(root: Path, folders: list[str], per_class: int = 2) -> Path:
    """An ImageFolder whose images encode their folder's position in ``folders`` (the red channel)."""
    for i, name in enumerate(folders):
        (root / name).mkdir(parents=True)
        for n in range(per_class):
            Image.new("RGB", (4, 4), (i, n, 0)).save(root / name / f"{n}.png")
    return root


def _label_of_folder(image_set) -> dict[str, int]:
    return {path.parent.name: int(label) for (path, _), label in zip(image_set.items, image_set.labels, strict=True)}


def test_name_key_ignores_case_spaces_and_punctuation():
    assert name_key("Cheese_Plate") == name_key("cheese plate") == "cheeseplate"
    assert name_key("Ram C/V Cargo Van Minivan 2012") == name_key("Ram C-V Cargo Van Minivan 2012")


def test_native_food_folders_map_by_name_not_sorted_order(tmp_path):
    classes = list(get_dataset("food").classnames)
    i, j = classes.index("cheesecake"), classes.index("cheese plate")
    assert i < j  # the standard order; sorted folder names put cheese_plate first
    native = [c.replace(" ", "_") for c in classes]
    image_set = load_imagefolder(_folder(tmp_path / "f", native, 1), len(classes), classnames=classes)
    labels = _label_of_folder(image_set)
    assert labels["cheesecake"] == i and labels["cheese_plate"] == j
    assert image_set.classes[i] == "cheesecake" and image_set.relabelled is not None
    assert all(labels[n] == k for k, n in enumerate(native))
    # without class names the old rule stands: sorted folder names give the indices
    plain = load_imagefolder(tmp_path / "f", len(classes))
    assert _label_of_folder(plain)["cheese_plate"] == i and plain.relabelled is None


def test_native_pets_and_eurosat_folders(tmp_path):
    pets = list(get_dataset("pets").classnames)
    cats = {"Abyssinian", "Bengal", "Birman", "Bombay", "British Shorthair", "Egyptian Mau", "Maine Coon", "Persian",
            "Ragdoll", "Russian Blue", "Siamese", "Sphynx"}
    native = [c.replace(" ", "_") if c in cats else c.lower().replace(" ", "_") for c in pets]
    image_set = load_imagefolder(_folder(tmp_path / "p", native, 1), len(pets), classnames=pets)
    assert all(_label_of_folder(image_set)[n] == k for k, n in enumerate(native))
    assert sorted(native) != native  # sorted order would have been wrong

    eurosat = folder_names("eurosat")
    native = [names[-1] for names in eurosat]
    assert native[:3] == ["AnnualCrop", "Forest", "HerbaceousVegetation"]
    shuffled = native[::-1]  # folder creation order is irrelevant; names decide
    image_set = load_imagefolder(
        _folder(tmp_path / "e", shuffled, 1), 10, classnames=[n[0] for n in eurosat], aliases=eurosat
    )
    assert all(_label_of_folder(image_set)[n] == k for k, n in enumerate(native))
    assert image_set.relabelled is None  # EuroSAT's folders sort into its class order: fingerprint unchanged


def test_imagenet_wordnet_ids_and_caltech256_numbered_folders(tmp_path):
    names = folder_names("imagenet_r")
    native = [n[-1] for n in names]
    assert native[0].startswith("n0") and len(set(native)) == 200
    assert folder_classes(native[::-1], [n[0] for n in names], names) == list(range(200))[::-1]
    c256 = folder_names("caltech256")
    assert folder_classes(["257.clutter", "001.ak47"], [n[0] for n in c256], c256) == [256, 0]


def test_cars_folders_in_either_name_order(tmp_path):
    names = folder_names("cars")
    classnames = [n[0] for n in names]
    assert folder_classes(["2012 Acura RL Sedan", "AM General Hummer SUV 2000"], classnames, names) == [1, 0]
    assert folder_classes(["Ram C-V Cargo Van Minivan 2012"], classnames, names) == [
        classnames.index("Ram C/V Cargo Van Minivan 2012")
    ]


def test_index_names_and_index_prefixes():
    classes = ["cat", "dog", "fox"]
    assert folder_classes(["0", "1", "2"], classes) == [0, 1, 2]
    assert folder_classes(["1", "2", "3"], classes) == [0, 1, 2]  # 1-based, as the official Flowers folders
    assert folder_classes(["0", "10", "2", "3", "4", "5", "6", "7", "8", "9", "1"], list("abcdefghijk")) == [
        0, 10, 2, 3, 4, 5, 6, 7, 8, 9, 1
    ]
    assert folder_classes(["002_fox", "000_cat", "001_dog"], classes) == [2, 0, 1]
    assert folder_classes(["fox", "Cat", "DOG"], classes) == [2, 0, 1]
    assert folder_classes(["a", "b", "c"], classes) is None  # no folder names a class: the caller's sorted order


def test_a_mismatch_is_one_clear_line(tmp_path):
    with pytest.raises(FolderMismatch) as err:
        folder_classes(["cat", "dog", "wolf"], ["cat", "dog", "fox"])
    message = str(err.value)
    assert "\n" not in message and "'wolf'" in message and "1 of 3 class folders" in message
    with pytest.raises(FolderMismatch, match="both name class 0"):
        folder_classes(["cat", "Cat_", "dog"], ["cat", "dog", "fox"])
    with pytest.raises(FolderMismatch, match="names two classes"):
        folder_classes(["missile", "cat"], ["missile", "cat", "missile"])
    root = _folder(tmp_path / "bad", ["cat", "dog", "wolf"], 1)
    with pytest.raises(DataError) as err:
        load_image_set(root, 3, flag="--eval", classnames=["cat", "dog", "fox"])
    assert str(err.value).startswith(f"{root}: 1 of 3 class folders") and "\n" not in str(err.value)


def test_check_inputs_maps_eval_and_few_shot_folders_by_name(tmp_path):
    classes = ["cat", "dog", "fox"]
    ev = _folder(tmp_path / "eval", ["fox", "dog", "cat"])
    real = _folder(tmp_path / "real", ["2", "0", "1"])
    inputs = check_inputs(
        TuneConfig(shots=1), classnames=classes, templates=["{}"], eval_data=ev, out=tmp_path / "out", few_shot=real
    )
    assert _label_of_folder(inputs.eval_set) == {"cat": 0, "dog": 1, "fox": 2}
    assert _label_of_folder(inputs.real_set) == {"0": 0, "1": 1, "2": 2}
    labels = inputs.real_set.labels[inputs.real_idx]
    assert sorted(labels.tolist()) == [0, 1, 2] and isinstance(labels, np.ndarray)
    with pytest.raises(DataError, match="1 of 3 class folders match no single class"):
        check_inputs(TuneConfig(shots=1), classnames=["cat", "dog", "wolf"], templates=["{}"], eval_data=ev,
                     out=tmp_path / "out2", few_shot=real)
    assert not (tmp_path / "out2").exists()


def test_a_relabelled_folder_has_its_own_fingerprint(tmp_path):
    root = _folder(tmp_path / "f", ["b_class", "a_class"], 1)
    by_sorted = load_imagefolder(root, 2)
    by_name = load_imagefolder(root, 2, classnames=["b class", "a class"])
    assert by_sorted.labels.tolist() == [0, 1] and by_name.labels.tolist() == [1, 0]
    assert by_sorted.fingerprint() != by_name.fingerprint()
    same_order = load_imagefolder(root, 2, classnames=["a class", "b class"])
    assert same_order.fingerprint() == by_sorted.fingerprint()  # matching that changes nothing changes no key
