"""Triton attention kernel vs the fp32 math reference, in triton's CPU interpreter.

Run by ``tests/kernels/test_triton_interpreter.py`` in a subprocess with ``TRITON_INTERPRET=1`` (triton
must be imported in interpreter mode; see docs/kernels.md). Shapes are drawn at random from fixed seeds.
Tolerances: fp32 atol 2e-5 / rtol 1e-4 (measured ~5e-7); fp16/bf16 one output rounding (atol 2e-3 /
rtol 1e-2 for fp16, atol 2e-2 / rtol 2e-2 for bf16) against the math reference on the same half inputs.
"""

import random

import pytest
import torch

from synthdata.kernels import _triton, attention, attention_math

if not _triton.interpreting() or _triton.triton_problem() is not None:
    pytest.skip("needs TRITON_INTERPRET=1 set before triton is imported", allow_module_level=True)

TOL = {
    torch.float32: {"atol": 2e-5, "rtol": 1e-4},
    torch.float16: {"atol": 2e-3, "rtol": 1e-2},
    torch.bfloat16: {"atol": 2e-2, "rtol": 2e-2},
}


def _case(seed: int, dtype: torch.dtype, *, d: int | None = None, extra: bool = True, layout: str = "bhtd"):
    rng = random.Random(seed)
    b, h = rng.randint(1, 2), rng.randint(1, 3)
    t = rng.randint(1, 80)
    tk = t if rng.random() < 0.7 else rng.randint(0 if extra else 1, 70)
    s = rng.randint(1, 40) if extra else 0
    d = d or rng.choice([16, 32, 64])
    g = torch.Generator().manual_seed(seed)

    def make(n):
        if layout == "bhdt":  # GLIDE's own layout: sequence dim contiguous
            return torch.randn(b, h, d, n, generator=g).to(dtype).transpose(2, 3)
        return torch.randn(b, h, n, d, generator=g).to(dtype)

    q, k, v = make(t), make(tk), make(tk)
    ke, ve = (make(s), make(s)) if extra else (None, None)
    return q, k, v, ke, ve


@pytest.mark.parametrize("seed", range(8))
def test_random_shapes_fp32(seed):
    q, k, v, ke, ve = _case(seed, torch.float32)
    got = attention(q, k, v, k_extra=ke, v_extra=ve, backend="triton")
    torch.testing.assert_close(got, attention_math(q, k, v, ke, ve), **TOL[torch.float32])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("seed", range(2))
def test_random_shapes_half(seed, dtype):
    q, k, v, ke, ve = _case(100 + seed, dtype)
    got = attention(q, k, v, k_extra=ke, v_extra=ve, backend="triton")
    assert got.dtype == dtype
    torch.testing.assert_close(got.float(), attention_math(q, k, v, ke, ve).float(), **TOL[dtype])


@pytest.mark.parametrize("d", [16, 128])
def test_head_dims(d):
    q, k, v, ke, ve = _case(7, torch.float32, d=d)
    got = attention(q, k, v, k_extra=ke, v_extra=ve, backend="triton")
    torch.testing.assert_close(got, attention_math(q, k, v, ke, ve), **TOL[torch.float32])


def test_without_extra_keys():
    q, k, v, _, _ = _case(3, torch.float32, extra=False)
    got = attention(q, k, v, backend="triton")
    torch.testing.assert_close(got, attention_math(q, k, v), **TOL[torch.float32])


def test_only_extra_keys():
    q, k, v, ke, ve = _case(4, torch.float32)
    k0, v0 = k[:, :, :0], v[:, :, :0]
    got = attention(q, k0, v0, k_extra=ke, v_extra=ve, backend="triton")
    torch.testing.assert_close(got, attention_math(q, k0, v0, ke, ve), **TOL[torch.float32])


def test_glide_layout_and_out_buffer():
    """Sequence-contiguous inputs (GLIDE's (B, heads, d, T)) and an ``out`` in that layout: no copies."""
    q, k, v, ke, ve = _case(5, torch.float32, layout="bhdt")
    b, h, t, d = q.shape
    out = torch.empty(b, h, d, t).transpose(2, 3)
    got = attention(q, k, v, k_extra=ke, v_extra=ve, backend="triton", out=out)
    assert got is out
    torch.testing.assert_close(got, attention_math(q, k, v, ke, ve), **TOL[torch.float32])


def test_large_logits_stay_finite():
    q, k, v, ke, ve = _case(6, torch.float32)
    q = q * 30
    got = attention(q, k, v, k_extra=ke, v_extra=ve, backend="triton")
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, attention_math(q, k, v, ke, ve), atol=1e-4, rtol=1e-4)


def test_auto_never_picks_the_interpreter():
    q, k, v, ke, ve = _case(1, torch.float32)
    got = attention(q, k, v, k_extra=ke, v_extra=ve)  # auto: sdpa on CPU
    torch.testing.assert_close(got, attention_math(q, k, v, ke, ve), atol=1e-5, rtol=1e-5)
