"""Triton fused guidance + sampler steps vs the torch reference, in triton's CPU interpreter.

Run in a subprocess with ``TRITON_INTERPRET=1`` by ``tests/kernels/test_triton_interpreter.py``.
Tolerance (fp32): atol 2e-6 / rtol 2e-6 (FMA contraction and exp differ from torch by an ulp or two).
"""

import random

import pytest
import torch

from synthdata.kernels import SamplerTables, _triton, ddim_step, guided_ancestral_step

if not _triton.interpreting() or _triton.triton_problem() is not None:
    pytest.skip("needs TRITON_INTERPRET=1 set before triton is imported", allow_module_level=True)

TOL = {"atol": 2e-6, "rtol": 2e-6}
TABLES = SamplerTables(torch.linspace(1e-4, 0.02, 40, dtype=torch.float64))


def _case(seed: int, rows_mode: str, ddim_eps_only: bool = False):
    rng = random.Random(seed)
    b = rng.randint(1, 3)
    c = 3
    h, w = rng.randint(1, 12), rng.randint(1, 12)
    g = torch.Generator().manual_seed(seed)
    rows_m = 2 * b if rows_mode != "plain" else b
    rows_x = b if rows_mode == "half" else rows_m
    mo = torch.randn(rows_m, c if ddim_eps_only else 2 * c, h, w, generator=g)
    x = torch.randn(rows_x, c, h, w, generator=g) * 1.5
    noise = torch.randn(rows_x, c, h, w, generator=g)
    gs = None if rows_mode == "plain" else rng.choice([1.0, 3.0, 7.5])
    return mo, x, noise, gs, rng.randrange(TABLES.num_steps)


@pytest.mark.parametrize("rows_mode", ["doubled", "half", "plain"])
@pytest.mark.parametrize("seed", range(3))
def test_ancestral(seed, rows_mode):
    mo, x, noise, gs, t = _case(seed, rows_mode)
    coefs = SamplerTables.row(TABLES.ancestral, t)
    for clip in (True, False):
        got = guided_ancestral_step(mo, x, noise, coefs, guidance_scale=gs, clip_denoised=clip, backend="triton")
        want = guided_ancestral_step(mo, x, noise, coefs, guidance_scale=gs, clip_denoised=clip, backend="torch")
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("eta", [0.0, 0.7])
@pytest.mark.parametrize("rows_mode", ["doubled", "half", "plain"])
def test_ddim(rows_mode, eta):
    for seed, eps_only in ((20, False), (21, True)):
        mo, x, noise, gs, t = _case(seed, rows_mode, ddim_eps_only=eps_only)
        coefs = SamplerTables.row(TABLES.ddim(eta), t)
        got = ddim_step(mo, x, noise, coefs, guidance_scale=gs, backend="triton")
        want = ddim_step(mo, x, noise, coefs, guidance_scale=gs, backend="torch")
        torch.testing.assert_close(got, want, **TOL)


def test_tensor_guidance_scale_no_noise_last_step_and_in_place():
    mo, x, _, _, _ = _case(5, "doubled")
    gs = torch.tensor(3.0)
    for t in (0, TABLES.num_steps - 1):
        coefs = SamplerTables.row(TABLES.ancestral, torch.tensor(t))
        want = guided_ancestral_step(mo, x, None, coefs, guidance_scale=gs, backend="torch")
        buf = x.clone()
        got = guided_ancestral_step(mo, buf, None, coefs, guidance_scale=gs, backend="triton", out=buf)
        assert got is buf
        torch.testing.assert_close(got, want, **TOL)


def test_half_precision_state():
    mo, x, noise, gs, t = _case(9, "half")
    x16, n16 = x.half(), noise.half()
    coefs = SamplerTables.row(TABLES.ancestral, t)
    got = guided_ancestral_step(mo, x16, n16, coefs, guidance_scale=gs, backend="triton")
    want = guided_ancestral_step(mo, x16, n16, coefs, guidance_scale=gs, backend="torch")
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.float(), want.float(), atol=2e-3, rtol=2e-3)
