"""Samplers against the official reference loops, guidance, explicit noise and Real Guidance."""

from __future__ import annotations

import pytest
import torch

from synthdata.diffusion.options import smoke_options
from synthdata.diffusion.sampling import (
    REAL_GUIDANCE_STEPS,
    GeneratorNoise,
    TensorNoise,
    denoise_step,
    model_fn_for,
    real_guidance_sample,
    real_guidance_start_step,
    sample_loop,
)
from synthdata.diffusion.schedule import create_diffusion

from .conftest import case, rel


def _guided(model, t, scale):
    with torch.no_grad():
        return model_fn_for(model, model.encode_text(t["tokens"], t["mask"]), guidance_scale=scale)


def test_base_cfg_parity(tensors, cases, tiny_base):
    entry, t = cases["base_cfg"], case(tensors, "base_cfg")
    d = create_diffusion(entry["options"])
    fn = _guided(tiny_base, t, entry["guidance_scale"])
    noise = TensorNoise(t["initial_noise"], t["step_noise"])
    out = sample_loop(d, fn, t["initial_noise"], noise=noise, clip_denoised=entry["clip_denoised"])
    assert rel(out, t["samples"]) < 1e-3


def test_real_guidance_parity(tensors, cases, tiny_base):
    entry = cases["real_guidance"]
    t = case(tensors, "real_guidance")
    tok = case(tensors, "base_cfg")
    d = create_diffusion(cases["base_cfg"]["options"], entry["timestep_respacing"])
    fn = _guided(tiny_base, tok, entry["guidance_scale"])
    noise = TensorNoise(t["q_noise"], t["step_noise"])
    k = entry["refer_img_iters"]
    out = real_guidance_sample(d, fn, t["ref_image"], k, noise=noise, batch=t["q_noise"].shape[0])
    assert rel(out, t["samples"]) < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("key", ["samples_noclip", "samples"])
def test_upsampler_ddim_parity(tensors, cases, tiny_upsample, key):
    entry, t = cases["up_ddim"], case(tensors, "up_ddim")
    d = create_diffusion(entry["options"])
    with torch.no_grad():
        fn = model_fn_for(tiny_upsample, tiny_upsample.encode_text(t["tokens"], t["mask"]), low_res=t["low_res"])
    out = sample_loop(d, fn, t["noise"], method="ddim", eta=entry["eta"], clip_denoised=key == "samples")
    assert rel(out, t[key]) < 1e-3


# ------------------------------------------------------------------------ steps on a stand-in model
def _fake_model(c: int = 3):
    """A deterministic eps/variance function, enough to check the step arithmetic cheaply."""

    def fn(x, t):
        return torch.cat([torch.tanh(x) * 0.5, torch.zeros_like(x[:, :c]) + (t.float() / 1000)[:, None, None, None]], 1)

    return fn


def test_guidance_combines_cond_and_uncond():
    calls = []

    class M(torch.nn.Module):
        def forward(self, x, t, text_emb=None, **kw):
            calls.append(x.shape[0])
            eps = torch.cat([torch.ones_like(x[:1]), torch.zeros_like(x[:1])])
            return torch.cat([eps, torch.full_like(x, 7)], 1)

    fn = model_fn_for(M(), None, guidance_scale=3.0)
    out = fn(torch.zeros(1, 3, 2, 2), torch.tensor([5]))
    assert calls == [2]  # one doubled forward
    assert torch.all(out[:, :3] == 3.0) and torch.all(out[:, 3:] == 7)


def test_ancestral_last_step_uses_no_noise_and_ddim_eta0_is_deterministic():
    d = create_diffusion({}, "5")
    x = torch.randn(2, 3, 4, 4)
    a = denoise_step(d, _fake_model(), x, 0, None).sample
    assert torch.isfinite(a).all()
    with pytest.raises(ValueError, match="needs noise"):
        denoise_step(d, _fake_model(), x, 3, None)
    out1 = sample_loop(d, _fake_model(), x, method="ddim")
    out2 = sample_loop(d, _fake_model(), x, method="ddim")
    assert torch.equal(out1, out2)


def test_ddim_with_eta_consumes_noise():
    d = create_diffusion({}, "ddim10")
    x = torch.randn(1, 3, 4, 4)
    a = sample_loop(d, _fake_model(), x, method="ddim", eta=1.0, noise=GeneratorNoise.from_seeds([1]))
    b = sample_loop(d, _fake_model(), x, method="ddim", eta=1.0, noise=GeneratorNoise.from_seeds([2]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="noise source"):
        sample_loop(d, _fake_model(), x, method="ddim", eta=1.0)


def test_generator_noise_is_per_sample():
    both = GeneratorNoise.from_seeds([1, 2])
    one = GeneratorNoise.from_seeds([2])
    shape = (2, 3, 4, 4)
    a0, a1 = both.initial(shape, "cpu"), both.step(0, shape, "cpu")
    b0, b1 = one.initial((1, 3, 4, 4), "cpu"), one.step(0, (1, 3, 4, 4), "cpu")
    assert torch.equal(a0[1:], b0) and torch.equal(a1[1:], b1)
    assert not torch.equal(a0[0], a0[1])


def test_tensor_noise_checks_shape():
    noise = TensorNoise(torch.zeros(1, 3, 2, 2), torch.zeros(2, 1, 3, 2, 2))
    with pytest.raises(ValueError, match="shape"):
        noise.initial((2, 3, 2, 2), "cpu")
    with pytest.raises(ValueError, match="step 2"):
        noise.step(2, (1, 3, 2, 2), "cpu")


def test_real_guidance_steps_from_shots():
    assert dict(REAL_GUIDANCE_STEPS) == {16: 15, 8: 20, 4: 35, 2: 40, 1: 50}
    assert [real_guidance_start_step(s) for s in (1, 2, 4, 8, 16, 32)] == [50, 40, 35, 20, 15, 15]
    assert real_guidance_start_step(3) == 40
    assert real_guidance_start_step(4, {1: 80, 4: 60}) == 60
    with pytest.raises(ValueError):
        real_guidance_start_step(0)


def test_real_guidance_runs_k_steps_from_noised_reference():
    d = create_diffusion({}, "100")
    seen = []
    ref = torch.zeros(1, 3, 4, 4)
    real_guidance_sample(
        d, _fake_model(), ref, 15, noise=GeneratorNoise.from_seeds([0, 1]), batch=2, callback=lambda i, o: seen.append(i)
    )
    assert seen == list(range(14, -1, -1))
    with pytest.raises(ValueError):
        real_guidance_sample(d, _fake_model(), ref, 101, noise=GeneratorNoise.from_seeds([0]))


def test_smoke_options_are_importable_for_sampling():
    assert create_diffusion(smoke_options("base")).num_timesteps == 10
