"""GlidePipeline on tiny random models: shapes, reproducibility, text embedding reuse, Real Guidance, errors."""

from __future__ import annotations

import pytest
import torch

from synthdata.diffusion.checkpoints import CheckpointError
from synthdata.diffusion.model import create_model
from synthdata.diffusion.options import smoke_options
from synthdata.diffusion.pipeline import GlidePipeline, quantize_8bit, smoke_model, to_uint8

# the smoke architecture shrunk to 16 px (base) and 32 px (upsampler) to keep loops cheap on a CPU
_MINI = {"xf_layers": 1, "attention_resolutions": "8"}


def mini(seed: int = 0, upsample: bool = False, sampler: str = "exact") -> GlidePipeline:
    base = create_model(smoke_options("base", image_size=16, channel_mult="1,2", **_MINI), seed=seed)
    up = None
    if upsample:
        up = create_model(smoke_options("upsample", image_size=32, channel_mult="1,1,1", **_MINI), seed=seed)
    return GlidePipeline(base, up, sampler=sampler)


@pytest.fixture(scope="module")
def pipe() -> GlidePipeline:
    return mini()


def _count_text_encodes(model) -> list[int]:
    calls: list[int] = []
    model.transformer.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    return calls


@pytest.mark.parametrize("sampler", ["exact", "fast"])
def test_text_encoded_once_per_batch_and_empty_prompt_once_per_model(sampler):
    pipe = mini(seed=5, sampler=sampler)
    calls = _count_text_encodes(pipe.base)
    pipe.generate_base(["a cat", "a dog"], [1, 2], respacing="3")
    assert sorted(calls) == [1, 2]  # the batch's prompts, then the empty prompt (cached from now on)
    pipe.generate_base(["a bird"], [3], respacing="3")
    assert sorted(calls) == [1, 1, 2]


def test_sampler_choice_and_the_fast_batch_fixed_by_the_first_call():
    from synthdata.diffusion.fast import FastAttentionBlock, FastSampling
    from synthdata.diffusion.samplers import ExactSampler, create_sampler

    assert isinstance(create_sampler("exact"), ExactSampler)
    own = FastSampling(3)
    assert create_sampler(own) is own
    with pytest.raises(ValueError, match="unknown sampler 'euler'"):
        create_sampler("euler")
    exact = mini(seed=2)
    assert isinstance(exact.sampler, ExactSampler) and exact.sampler.chunks(5) == [slice(0, 5)]
    assert not any(isinstance(m, FastAttentionBlock) for m in exact.base.modules())
    fast = mini(seed=2, sampler="fast")
    assert isinstance(fast.sampler, FastSampling) and fast.sampler.batch_size is None
    assert any(isinstance(m, FastAttentionBlock) for m in fast.base.modules())  # accelerated when built
    got = fast.generate_base(["a cat", "a dog"], [1, 2], respacing="3")
    assert fast.sampler.batch_size == 2 and fast.sampler.chunks(5) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    torch.testing.assert_close(got, exact.generate_base(["a cat", "a dog"], [1, 2], respacing="3"), atol=1e-4, rtol=1e-4)
    assert fast.describe()["sampler"] == "fast" and "sampler" not in exact.describe()


def test_generate_base_is_reproducible_and_batch_independent(pipe):
    two = pipe.generate_base(["a cat", "a dog"], [11, 12], respacing="3")
    assert two.shape == (2, 3, 16, 16) and two.dtype == torch.float32
    assert two.abs().max() <= 1.0 + 1e-6
    one = pipe.generate_base(["a dog"], [12], respacing="3")
    torch.testing.assert_close(one[0], two[1], rtol=1e-4, atol=1e-4)
    again = pipe.generate_base(["a cat"], [11], respacing="3")
    torch.testing.assert_close(again[0], two[0], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(two[0], two[1])


def test_real_guidance_rows_start_from_their_reference(pipe):
    ref = torch.full((32, 32, 3), 200, dtype=torch.uint8)  # resized to the model's 16 px
    out = pipe.generate_base(["a cat", "a cat"], [1, 1], respacing="4", real_guidance=[ref, None], start_step=1)
    # one step from the reference noised to t=0 stays near it; the other row ran 4 steps from noise
    target = torch.full((3, 16, 16), 200 / 127.5 - 1)
    assert (out[0] - target).abs().mean() < 0.05 < (out[1] - target).abs().mean()
    with pytest.raises(ValueError, match="start_step"):
        pipe.generate_base(["a"], [1], real_guidance=[ref])
    with pytest.raises(ValueError, match="seeds"):
        pipe.generate_base(["a", "b"], [1])


def test_smoke_pipeline_generates_256_px_uint8():
    pipe = GlidePipeline.smoke(upsample=True)
    big = pipe.generate(["a cat"], [4], size=256, base_respacing="1", up_respacing="1")
    assert big.shape == (1, 256, 256, 3) and big.dtype == torch.uint8
    assert big.float().std() > 1  # the smoke models' output layers are randomised: not a constant image
    with pytest.raises(ValueError, match="size"):
        pipe.generate(["a"], [1], size=128)


def test_upsample_is_reproducible_per_seed():
    pipe = mini(upsample=True)
    low = pipe.generate_base(["a", "b"], [1, 2], respacing="2")
    up = pipe.upsample(low, ["a", "b"], [1, 2], respacing="2", temperature=0.997)
    assert up.shape == (2, 3, 32, 32)
    one = pipe.upsample(low[1:], ["b"], [2], respacing="2")
    torch.testing.assert_close(one[0], up[1], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="no upsampler"):
        mini().upsample(low, ["a", "b"], [1, 2])


def test_upsampler_input_is_quantised_to_8_bits():
    x = torch.linspace(-1, 1, 1000)
    q = quantize_8bit(x)
    assert torch.allclose((q + 1) * 127.5, ((q + 1) * 127.5).round(), atol=1e-4)
    assert (q - x).abs().max() <= 1 / 255 + 1e-6
    assert to_uint8(torch.zeros(1, 3, 2, 2)).tolist() == [[[[128] * 3] * 2] * 2]


def test_describe_and_digests(pipe):
    d = pipe.describe()
    assert d["base_options"]["num_channels"] == 32 and d["upsample_options"] is None
    assert d["dtype"] == "float32" and d["device"] == "cpu"
    assert d["digests"]["base"].startswith("state:") and len(d["digests"]["base"]) == 6 + 64
    assert mini().model_digests() == pipe.model_digests()
    assert mini(seed=9).model_digests() != pipe.model_digests()
    assert smoke_model("base", seed=0).out[2].weight.any()  # smoke models are not zero-output
    assert pipe.diffusion("base", "fast27").num_timesteps == 27


def test_pretrained_offline_names_the_file(tmp_path, monkeypatch):
    from synthdata.diffusion import checkpoints

    monkeypatch.setitem(
        checkpoints.ARTIFACTS,
        "glide.base",
        checkpoints.Artifact("glide.base", "base.pt", "http://127.0.0.1:9/base.pt", "base"),
    )
    with pytest.raises(CheckpointError, match=r"base\.pt.*http://127\.0\.0\.1:9/base\.pt"):
        GlidePipeline.pretrained(upsample=False, cache_dir=tmp_path, download=False)


def test_generate_base_equals_the_documented_composition(pipe):
    """Seed s: initial noise then one draw per ancestral step from torch.Generator().manual_seed(s); the
    prompt's embedding with the empty prompt's for guidance."""
    from synthdata.diffusion.sampling import TensorNoise, model_fn_for, sample_loop

    got = pipe.generate_base(["a cat"], [21], respacing="3", guidance_scale=2.5)
    g = torch.Generator().manual_seed(21)
    initial = torch.randn((3, 16, 16), generator=g)[None]
    steps = torch.stack([torch.randn((3, 16, 16), generator=g)[None] for _ in range(2)])
    model = pipe.base
    tokens, mask = pipe.tokenizer.batch(["a cat", ""], 128)
    with torch.no_grad():
        fn = model_fn_for(model, model.encode_text(tokens, mask), guidance_scale=2.5)
    want = sample_loop(pipe.diffusion("base", "3"), fn, initial, noise=TensorNoise(initial, steps))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
