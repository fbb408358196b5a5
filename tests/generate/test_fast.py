"""The runner's fast sampler (``GlidePipeline`` with ``FastSampling``) keeps the exact sampler's contract
(same seeds, same images to float rounding) and its padded policy: one fixed batch size per run, so one step
shape per model."""

import numpy as np
import torch

from synthdata.diffusion.fast import FastSampling
from synthdata.diffusion.pipeline import GlidePipeline
from synthdata.diffusion.runner import GenerateConfig, Prompt, build_pipeline, run_generation
from synthdata.diffusion.runner import _run as runner_run
from synthdata.diffusion.samplers import ExactSampler
from synthdata.shards import WorkSplit

from ._helpers import prompt_records, read_dir

PROMPTS = ["a photo of a cat", "a red car"]
SEEDS = [11, 22]


def _close(a, b):
    diff = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
    assert diff.max() <= 8 and (diff > 0).mean() < 0.01, diff.max()


def _one_step_shape_each(pipe):
    fast = pipe.sampler
    assert isinstance(fast, FastSampling)
    assert fast._samplers, "no sampler was used"
    roles = [key[0] for key in fast._samplers]
    assert len(roles) == len(set(roles)), list(fast._samplers)  # one sampler per model
    for sampler in fast._samplers.values():
        assert sampler.batch_size == fast.batch_size
        assert len(sampler._runners) == 1, list(sampler._runners)  # one step shape: one capture on CUDA


def _spy_on_builds(monkeypatch) -> list:
    """The pipelines the runner builds, in order."""
    built = []

    def spy(cfg, **kw):
        built.append(build_pipeline(cfg, **kw))
        return built[-1]

    monkeypatch.setattr(runner_run, "build_pipeline", spy)
    return built


def test_fast_matches_exact_on_cpu():
    exact = GlidePipeline.smoke(upsample=False)
    fast = GlidePipeline.smoke(upsample=False, sampler=FastSampling(batch_size=4))
    kw = {"size": 64, "base_respacing": "2"}
    want = exact.generate(PROMPTS, SEEDS, **kw)
    got = fast.generate(PROMPTS, SEEDS, **kw)  # 2 rows, padded to the sampler's 4
    assert got.shape == want.shape == (2, 64, 64, 3) and got.dtype == torch.uint8
    _close(got, want)
    assert fast.model_digests() == exact.model_digests()
    info = fast.describe()
    assert info["sampler"] == "fast" and info["digests"] == exact.model_digests()
    assert info["fast"]["batch_size"] == 4 and info["fast"]["channels_last"] is False
    assert {"attention", "norm", "cuda_graphs", "sampler"} <= info["fast"].keys()
    assert fast.diffusion("base", "2").num_timesteps == 2
    # Real Guidance beside plain rows: each row starts from its own reference (or noise), as in the exact path
    refs = [torch.full((48, 48, 3), 20, dtype=torch.uint8), None]
    want = exact.generate(PROMPTS, SEEDS, real_guidance=refs, start_step=1, **kw)
    _close(fast.generate(PROMPTS, SEEDS, real_guidance=refs, start_step=1, **kw), want)


def test_sampler_choice():
    cfg = GenerateConfig(out="x", smoke=True, sampler="fast").resolved()
    fast = build_pipeline(cfg)
    assert isinstance(fast, GlidePipeline) and isinstance(fast.sampler, FastSampling)
    assert fast.sampler.batch_size == cfg.batch_size
    assert fast.dtype == torch.float32 and not fast.sampler.channels_last  # channels_last: CUDA and half only
    assert build_pipeline(cfg, batch_size=5).sampler.batch_size == 5
    auto = build_pipeline(GenerateConfig(out="x", smoke=True, device="cpu").resolved())
    assert isinstance(auto, GlidePipeline)  # auto: exact on the CPU, fast on CUDA
    assert isinstance(auto.sampler, ExactSampler) and "sampler" not in auto.describe()


def test_a_run_keeps_one_batch_shape_and_matches_the_exact_run(tmp_path, monkeypatch):
    built = _spy_on_builds(monkeypatch)
    prompts = [Prompt(r["id"], r["class_index"], r["class_name"], r["prompt"]) for r in prompt_records(2)]
    # 12 items in shards of 5, 5, 2; batches of up to 3 within a shard: 3+2, 3+2, 2 (short batches padded)
    common = {"images_per_prompt": 2, "shard_size": 5, "batch_size": 3, "smoke": True, "base_respacing": "2"}
    for name, sampler in (("fast", "fast"), ("exact", "exact")):
        cfg = GenerateConfig(out=str(tmp_path / name), sampler=sampler, device="cpu", **common)
        s = run_generation(cfg, prompts, split=WorkSplit(0, 1), progress=False)
        assert s.images == 12 and s.dataset_complete
    fast = built[0]
    assert isinstance(fast.sampler, FastSampling) and fast.sampler.batch_size == 3
    _one_step_shape_each(fast)
    a, b = read_dir(tmp_path / "fast"), read_dir(tmp_path / "exact")
    assert a.keys() == b.keys() and len(a) == 12
    for k in a:
        _close(a[k][0], b[k][0])
        assert a[k][1] == b[k][1] and a[k][2] == b[k][2]  # class and metadata identical


def test_the_fast_batch_is_at_most_the_largest_shard(tmp_path, monkeypatch):
    built = _spy_on_builds(monkeypatch)
    prompts = [Prompt(r["id"], r["class_index"], r["class_name"], r["prompt"]) for r in prompt_records(1)]
    cfg = GenerateConfig(out=str(tmp_path / "o"), sampler="fast", device="cpu", smoke=True, base_respacing="2")
    run_generation(cfg, prompts, split=WorkSplit(0, 1), progress=False)  # 3 items, --batch-size 32
    assert built[0].sampler.batch_size == 3
    _one_step_shape_each(built[0])
