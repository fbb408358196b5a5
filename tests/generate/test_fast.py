"""The fast-sampler adapter keeps GlidePipeline's contract: same seeds, same images to float rounding."""

import numpy as np
import torch

from synthdata.diffusion.pipeline import GlidePipeline
from synthdata.diffusion.runner import GenerateConfig, build_pipeline
from synthdata.diffusion.runner._fast import FastGlide

PROMPTS = ["a photo of a cat", "a red car"]
SEEDS = [11, 22]


def _close(a, b):
    diff = np.abs(a.numpy().astype(int) - b.numpy().astype(int))
    assert diff.max() <= 8 and (diff > 0).mean() < 0.01, diff.max()


def test_fast_matches_exact_on_cpu():
    exact = GlidePipeline.smoke(upsample=False)
    fast = FastGlide(GlidePipeline.smoke(upsample=False), batch_size=4)
    kw = {"size": 64, "base_respacing": "2"}
    want = exact.generate(PROMPTS, SEEDS, **kw)
    got = fast.generate(PROMPTS, SEEDS, **kw)  # 2 rows: a sampler of 2 (no padding to 4)
    assert got.shape == want.shape == (2, 64, 64, 3) and got.dtype == torch.uint8
    _close(got, want)
    assert [k[-1] for k in fast._samplers] == [2]
    assert fast.model_digests() == exact.model_digests() and fast.describe()["sampler"] == "fast"
    # Real Guidance: every row starts from its reference noised to step k-1
    refs = [torch.full((48, 48, 3), v, dtype=torch.uint8) for v in (20, 220)]
    want = exact.generate(PROMPTS, SEEDS, real_guidance=refs, start_step=1, **kw)
    _close(fast.generate(PROMPTS, SEEDS, real_guidance=refs, start_step=1, **kw), want)


def test_sampler_choice():
    assert isinstance(
        build_pipeline(GenerateConfig(out="x", smoke=True, sampler="fast").resolved()), FastGlide
    )
    auto = build_pipeline(GenerateConfig(out="x", smoke=True, device="cpu").resolved())
    assert isinstance(auto, GlidePipeline)  # auto: exact on the CPU, fast on CUDA
