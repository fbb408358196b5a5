"""Fused guidance + sampler step, torch backend: against float64 formulas of GLIDE's samplers."""

import math

import pytest
import torch

from synthdata.kernels import AncestralCoefs, DDIMCoefs, SamplerTables, ddim_step, guided_ancestral_step

BETAS = torch.linspace(1e-4, 0.02, 30, dtype=torch.float64)


def _schedule64(t):
    b = BETAS
    ac = torch.cumprod(1 - b, 0)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
    pv = b * (1 - prev) / (1 - ac)
    return {
        "ac": ac[t],
        "prev": prev[t],
        "c1": (b * prev.sqrt() / (1 - ac))[t],
        "c2": ((1 - prev) * (1 - b).sqrt() / (1 - ac))[t],
        "minlog": torch.log(torch.cat([pv[1:2], pv[1:]]))[t],
        "maxlog": torch.log(b)[t],
    }


def _inputs(b=2, c=3, hw=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    mo = torch.randn(2 * b, 2 * c, hw, hw, generator=g)
    x = torch.randn(b, c, hw, hw, generator=g)
    noise = torch.randn(b, c, hw, hw, generator=g)
    return mo, x, noise


def _guided(mo, c, s):
    b = mo.shape[0] // 2
    e = mo[:, :c].double()
    return e[b:] + s * (e[:b] - e[b:]), mo[:b, c:].double()


@pytest.mark.parametrize("t", [0, 1, 17, 29])
def test_ancestral_matches_fp64(t):
    mo, x, noise = _inputs()
    s = _schedule64(t)
    eps, v = _guided(mo, 3, 3.0)
    x64 = x.double()
    x0 = ((1 / s["ac"]).sqrt() * x64 - (1 / s["ac"] - 1).sqrt() * eps).clamp(-1, 1)
    mean = s["c1"] * x0 + s["c2"] * x64
    frac = (v + 1) / 2
    logvar = frac * s["maxlog"] + (1 - frac) * s["minlog"]
    want = mean + (t > 0) * torch.exp(0.5 * logvar) * noise.double()
    tables = SamplerTables(BETAS)
    got = guided_ancestral_step(mo, x, noise, tables.row(tables.ancestral, t), guidance_scale=3.0, backend="torch")
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)
    # the doubled-rows convention (GLIDE's own loop) gives the conditional half the same result
    both = guided_ancestral_step(mo, torch.cat([x, x]), torch.cat([noise, noise]), tables.row(tables.ancestral, t),
                                 guidance_scale=3.0)  # fmt: skip
    torch.testing.assert_close(both[:2], got)


@pytest.mark.parametrize("eta", [0.0, 0.5])
@pytest.mark.parametrize("t", [0, 12, 29])
def test_ddim_matches_fp64(t, eta):
    mo, x, noise = _inputs(seed=1)
    s = _schedule64(t)
    e = mo[:2, :3].double()  # no guidance: the first 2 rows as their own batch
    x64 = x.double()
    x0 = ((1 / s["ac"]).sqrt() * x64 - (1 / s["ac"] - 1).sqrt() * e).clamp(-1, 1)
    eps = ((1 / s["ac"]).sqrt() * x64 - x0) / (1 / s["ac"] - 1).sqrt()
    sigma = eta * math.sqrt((1 - s["prev"]) / (1 - s["ac"])) * math.sqrt(1 - s["ac"] / s["prev"])
    want = x0 * s["prev"].sqrt() + math.sqrt(1 - s["prev"] - sigma**2) * eps + (t > 0) * sigma * noise.double()
    tables = SamplerTables(BETAS)
    got = ddim_step(mo[:2], x, noise, tables.row(tables.ddim(eta), torch.tensor(t)), backend="torch")
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


def test_coef_dataclasses_and_no_noise():
    mo, x, _ = _inputs()
    tables = SamplerTables(BETAS)
    row = tables.ancestral[5]
    coefs = AncestralCoefs(*row.tolist())
    torch.testing.assert_close(coefs.pack(), row)
    a = guided_ancestral_step(mo, x, None, coefs, guidance_scale=2.0)
    b = guided_ancestral_step(mo, x, None, row, guidance_scale=torch.tensor(2.0))
    torch.testing.assert_close(a, b)
    d = DDIMCoefs(*tables.ddim(0.0)[5].tolist())
    out = torch.empty_like(x)
    assert ddim_step(mo, x, None, d, guidance_scale=2.0, out=out) is out


def test_half_state_computed_in_fp32():
    mo, x, noise = _inputs()
    tables = SamplerTables(BETAS)
    row = tables.ancestral[10]
    got = guided_ancestral_step(mo.half(), x.half(), noise.half(), row, guidance_scale=3.0)
    want = guided_ancestral_step(mo.half().float(), x.half().float(), noise.half().float(), row, guidance_scale=3.0)
    assert got.dtype == torch.float16
    torch.testing.assert_close(got, want.half())


def test_bad_arguments():
    mo, x, noise = _inputs()
    tables = SamplerTables(BETAS)
    row = tables.ancestral[3]
    with pytest.raises(ValueError, match="conditional half"):
        guided_ancestral_step(mo, x[:1], None, row, guidance_scale=3.0)
    with pytest.raises(ValueError, match="same rows"):
        guided_ancestral_step(mo, x, None, row)
    with pytest.raises(ValueError, match="fp32 \\(7,\\)"):
        guided_ancestral_step(mo, x, None, row[:5], guidance_scale=3.0)
    with pytest.raises(TypeError, match="DDIMCoefs"):
        guided_ancestral_step(mo, x, None, DDIMCoefs(*tables.ddim()[3].tolist()), guidance_scale=3.0)
    with pytest.raises(ValueError, match="noise must have"):
        guided_ancestral_step(mo, x, noise[:1], row, guidance_scale=3.0)
    with pytest.raises(ValueError, match="finite"):
        guided_ancestral_step(mo, x, None, row, guidance_scale=float("inf"))
    with pytest.raises(ValueError, match="betas"):
        SamplerTables([0.5])


@pytest.mark.gpu
def test_triton_on_cuda():
    mo, x, noise = (t.cuda() for t in _inputs(b=4, hw=64))
    tables = SamplerTables(BETAS, device="cuda")
    for t in (0, 7):
        row = tables.row(tables.ancestral, torch.tensor(t, device="cuda"))
        got = guided_ancestral_step(mo, x, noise, row, guidance_scale=3.0, backend="triton")
        want = guided_ancestral_step(mo, x, noise, row, guidance_scale=3.0, backend="torch")
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
