"""Triton GroupNorm(+scale-shift)(+SiLU) vs the torch reference, in triton's CPU interpreter.

Run in a subprocess with ``TRITON_INTERPRET=1`` by ``tests/kernels/test_triton_interpreter.py``.
Tolerances: fp32 atol 1e-5 / rtol 1e-5 against a float64 reference (torch's own fp32 CPU group_norm is
not that close on offset inputs: its channels_last kernel was measured 3e-4 off, the kernel here 3e-6);
fp16 and bf16: one output rounding (atol 2e-3 / 2e-2) against the fp32 torch backend.
"""

import random

import pytest
import torch
import torch.nn.functional as F

from synthdata.kernels import _triton, group_norm_silu, group_norm_torch

if not _triton.interpreting() or _triton.triton_problem() is not None:
    pytest.skip("needs TRITON_INTERPRET=1 set before triton is imported", allow_module_level=True)

TOL = {
    torch.float32: {"atol": 1e-5, "rtol": 1e-5},
    torch.float16: {"atol": 2e-3, "rtol": 2e-3},
    torch.bfloat16: {"atol": 2e-2, "rtol": 2e-2},
}


def _ref64(x, w, b, *, groups, scale=None, shift=None, act=True):
    y = F.group_norm(x.double().contiguous(), groups, w.double(), b.double(), 1e-5)
    if scale is not None:
        y = y * (1 + scale.double()) + shift.double()
    return (y * torch.sigmoid(y) if act else y).float()


def _case(seed: int, dtype=torch.float32, *, dims: int = 4, channels_last: bool = False):
    rng = random.Random(seed)
    groups = rng.choice([1, 2, 4, 8])
    c = groups * rng.randint(1, 6)
    b = rng.randint(1, 2)
    spatial = (rng.randint(1, 9), rng.randint(1, 9)) if dims == 4 else (rng.randint(1, 40),)
    g = torch.Generator().manual_seed(seed)
    # an offset mean stresses the variance computation (a naive E[x^2] - E[x]^2 loses digits here)
    x = (torch.randn(b, c, *spatial, generator=g) * 2 + 50).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last) if dims == 4 else x.transpose(1, 2).contiguous().transpose(1, 2)
    w, bias = torch.randn(c, generator=g), torch.randn(c, generator=g)
    emb = torch.randn(b, 2 * c, *([1] * (dims - 2)), generator=g).to(dtype)
    scale, shift = emb.chunk(2, dim=1)  # strided views, as GLIDE's ResBlock makes them
    return x, w, bias, groups, scale, shift


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dims", [3, 4])
@pytest.mark.parametrize("seed", range(3))
def test_random_shapes_fp32(seed, dims, channels_last):
    x, w, bias, groups, scale, shift = _case(seed, dims=dims, channels_last=channels_last)
    for kw in ({}, {"scale": scale, "shift": shift}, {"act": False}):
        got = group_norm_silu(x, w, bias, groups=groups, backend="triton", **kw)
        want = _ref64(x, w, bias, groups=groups, **kw)
        assert got.stride() == x.stride()
        torch.testing.assert_close(got, want, **TOL[torch.float32])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs(dtype):
    x, w, bias, groups, scale, shift = _case(11, dtype, channels_last=True)
    got = group_norm_silu(x, w, bias, groups=groups, scale=scale, shift=shift, backend="triton")
    want = group_norm_torch(x, w, bias, groups=groups, scale=scale, shift=shift)
    assert got.dtype == dtype
    torch.testing.assert_close(got.float(), want.float(), **TOL[dtype])


def test_no_affine_and_glide_group_count():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 64, 3, 5, generator=g)
    got = group_norm_silu(x, None, None, backend="triton")  # groups=32, two channels per group
    torch.testing.assert_close(got, _ref64(x, torch.ones(64), torch.zeros(64), groups=32), **TOL[torch.float32])


def test_multiple_blocks_per_group():
    """A group larger than one block (1024 lanes in the interpreter) exercises the lane combine."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 30, 30, generator=g) * 3 - 7  # 2 groups of 1800 elements
    w, b = torch.randn(4, generator=g), torch.randn(4, generator=g)
    got = group_norm_silu(x, w, b, groups=2, backend="triton")
    torch.testing.assert_close(got, _ref64(x, w, b, groups=2), **TOL[torch.float32])
