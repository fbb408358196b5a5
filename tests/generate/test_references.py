"""Real Guidance references, prepared two ways: centre-cropped to a square (the default) or, as the official
code does, with the shorter side resized to 64 px and nothing cropped (the ``paper`` recipe)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from synthdata.diffusion.runner import GenerateConfig, GenerateError
from synthdata.diffusion.runner._config import RECIPES
from synthdata.diffusion.runner._refs import reference_pixels

from ._helpers import CLASSES, FakePipeline, make_imagefolder, read_dir
from .test_runner import _run


def _image(path, w, h):
    rng = np.random.default_rng(w * 1000 + h)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_center_crop_keeps_the_centre_square(tmp_path):
    arr = np.asarray(Image.open(_image(tmp_path / "wide.png", 48, 40)))
    got = reference_pixels(tmp_path / "wide.png").numpy()
    assert got.shape == (40, 40, 3) and np.array_equal(got, arr[:, 4:44])
    arr = np.asarray(Image.open(_image(tmp_path / "tall.png", 30, 37)))
    assert np.array_equal(reference_pixels(tmp_path / "tall.png", "center-crop").numpy(), arr[3:33])


@pytest.mark.parametrize(("w", "h", "shape"), [(48, 40, (64, 76, 3)), (30, 90, (192, 64, 3)), (64, 64, (64, 64, 3))])
def test_shorter_side_64_is_the_official_resize(tmp_path, w, h, shape):
    path = _image(tmp_path / "ref.png", w, h)
    got = reference_pixels(path, "shorter-side-64").numpy()
    assert got.shape == shape
    if (w, h) == (64, 64):
        assert np.array_equal(got, np.asarray(Image.open(path)))  # already 64 px: untouched
    transforms = pytest.importorskip("torchvision.transforms")
    official = transforms.Resize(64, interpolation=transforms.InterpolationMode.BICUBIC)(Image.open(path).convert("RGB"))
    assert np.array_equal(got, np.asarray(official))  # the same pixels as the official code's transform


def test_unknown_preprocessing_is_refused(tmp_path):
    with pytest.raises(GenerateError, match="center-crop or shorter-side-64"):
        reference_pixels(_image(tmp_path / "a.png", 8, 8), "stretch")


def test_a_run_in_each_mode(tmp_path):
    refs = make_imagefolder(tmp_path / "refs", CLASSES, per_class=2)  # 48 x 40 images
    kw = {"real_guidance": str(refs), "shots": 1, "images_per_prompt": 1, "base_respacing": "50"}
    crop, official = FakePipeline(), FakePipeline()
    _run(tmp_path / "crop", crop, **kw)
    _run(tmp_path / "official", official, **kw, reference_preprocessing="shorter-side-64")
    assert tuple(crop.kwargs[0]["real_guidance"][0].shape) == (40, 40, 3)
    assert tuple(official.kwargs[0]["real_guidance"][0].shape) == (64, 76, 3)  # not square: see docs
    a, b = read_dir(tmp_path / "crop"), read_dir(tmp_path / "official")
    key = "c0001-00000-s00-00000"
    assert a[key][2]["real_guidance"]["preprocessing"] == "center-crop"
    assert b[key][2]["real_guidance"]["preprocessing"] == "shorter-side-64"
    # other pixels reach the pipeline, so the mode is one of the settings a resumed run must keep
    with pytest.raises(GenerateError, match="reference_preprocessing: 'center-crop' -> 'shorter-side-64'"):
        _run(tmp_path / "crop", **kw, reference_preprocessing="shorter-side-64")


def test_the_paper_recipe_takes_the_official_preprocessing():
    assert GenerateConfig(out="x").reference_preprocessing == "center-crop"  # today's behaviour by default
    assert RECIPES["paper"] == {"size": 256, "reference_preprocessing": "shorter-side-64"}
    from synthdata.tools.generate import build_command

    cmd = build_command()
    args = cmd.parse(["--prompts", "p.jsonl", "--out", "o", "--recipe", "paper"])
    assert cmd.build(GenerateConfig, args, RECIPES).reference_preprocessing == "shorter-side-64"
    # without Real Guidance the setting changes nothing, and is not part of the fingerprint
    assert "reference_preprocessing" not in GenerateConfig(out="x").resolved().image_settings()


def test_the_pipeline_takes_a_reference_that_is_not_square():
    from synthdata.diffusion.pipeline import GlidePipeline

    pipe = GlidePipeline.smoke()
    ref = torch.from_numpy(np.full((64, 76, 3), 120, np.uint8))
    out = pipe.generate(["a cat"], [3], size=64, base_respacing="4", real_guidance=[ref], start_step=2)
    assert tuple(out.shape) == (1, 64, 64, 3) and out.dtype == torch.uint8
