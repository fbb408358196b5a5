"""GroupNorm(+scale-shift)(+SiLU), torch backend: GLIDE's fp32 semantics and argument checks."""

import pytest
import torch
import torch.nn.functional as F

from synthdata.kernels import group_norm_silu, group_norm_torch


def _inputs(b=2, c=64, h=5, w=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g) * 3 + 1
    weight, bias = torch.randn(c, generator=g), torch.randn(c, generator=g)
    emb = torch.randn(b, 2 * c, 1, 1, generator=g)
    return x, weight, bias, *emb.chunk(2, dim=1)


def test_fp32_matches_glide_ops_exactly():
    x, w, b, scale, shift = _inputs()
    y = F.group_norm(x, 32, w, b, 1e-5)
    torch.testing.assert_close(group_norm_silu(x, w, b, backend="torch"), F.silu(y), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(
        group_norm_silu(x, w, b, scale=scale, shift=shift, backend="torch"),
        F.silu(y * (1 + scale) + shift),
        atol=1e-6,
        rtol=1e-6,
    )
    torch.testing.assert_close(group_norm_silu(x, w, b, act=False), y, atol=1e-6, rtol=1e-6)


def test_half_input_statistics_in_fp32():
    x, w, b, scale, shift = _inputs()
    x16 = (x * 100 + 3000).to(torch.bfloat16)  # large offset: bf16 statistics would be useless here
    got = group_norm_torch(x16, w, b, scale=scale.bfloat16(), shift=shift.bfloat16())
    assert got.dtype == torch.bfloat16
    want = F.silu(F.group_norm(x16.double(), 32, w.double(), b.double()) * (1 + scale.double()) + shift.double())
    torch.testing.assert_close(got.float(), want.float(), atol=3e-2, rtol=2e-2)


def test_layouts_and_shapes_kept():
    x, w, b, scale, shift = _inputs()
    xcl = x.to(memory_format=torch.channels_last)
    got = group_norm_silu(xcl, w, b, scale=scale.reshape(2, 64), shift=shift)
    assert got.shape == x.shape
    torch.testing.assert_close(got, group_norm_silu(x, w, b, scale=scale, shift=shift), atol=1e-4, rtol=1e-4)
    seq = torch.randn(2, 64, 9)
    assert group_norm_silu(seq, None, None).shape == seq.shape


def test_bad_arguments():
    x, w, b, scale, shift = _inputs()
    with pytest.raises(ValueError, match="do not split into 32 groups"):
        group_norm_silu(x[:, :48], None, None)
    with pytest.raises(ValueError, match="both scale and shift"):
        group_norm_silu(x, w, b, scale=scale)
    with pytest.raises(ValueError, match="scale must be"):
        group_norm_silu(x, w, b, scale=scale[:1], shift=shift)
    with pytest.raises(ValueError, match="weight must be"):
        group_norm_silu(x, w[:3], b)
    with pytest.raises(ValueError, match="x must be"):
        group_norm_silu(x[0, 0], None, None)
    with pytest.raises(TypeError, match="floating-point"):
        group_norm_silu(x.long(), None, None)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("channels_last", [False, True])
def test_triton_on_cuda(dtype, channels_last):
    x, w, b, scale, shift = (t.cuda() for t in _inputs(b=2, c=128, h=32, w=32))
    x = x.to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    got = group_norm_silu(x, w, b, scale=scale.to(dtype), shift=shift.to(dtype), backend="triton")
    want = group_norm_torch(x, w, b, scale=scale.to(dtype), shift=shift.to(dtype))
    assert got.stride() == x.stride()
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(got.float(), want.float(), atol=tol, rtol=tol)
