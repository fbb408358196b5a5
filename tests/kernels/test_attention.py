"""Attention (CPU backends): sdpa and math against an explicit fp64 softmax, argument checks."""

import pytest
import torch

from synthdata.kernels import attention, attention_math


def _ref64(q, k, v, ke=None, ve=None, scale=None):
    if ke is not None:
        k, v = torch.cat([ke, k], dim=2), torch.cat([ve, v], dim=2)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    w = torch.softmax(q.double() @ k.double().transpose(-1, -2) * scale, dim=-1)
    return (w @ v.double()).float()


def _qkv(b=2, h=3, t=7, tk=7, s=4, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, d, generator=g) for n in (t, tk, tk))
    ke, ve = (torch.randn(b, h, s, d, generator=g) for _ in range(2))
    return q, k, v, ke, ve


@pytest.mark.parametrize("backend", ["sdpa", "math", "auto"])
def test_cpu_backends_match_fp64(backend):
    q, k, v, ke, ve = _qkv()
    got = attention(q, k, v, k_extra=ke, v_extra=ve, backend=backend)
    torch.testing.assert_close(got, _ref64(q, k, v, ke, ve), atol=1e-5, rtol=1e-5)
    got = attention(q, k, v, backend=backend, scale=0.3)
    torch.testing.assert_close(got, _ref64(q, k, v, scale=0.3), atol=1e-5, rtol=1e-5)


def test_matches_glide_scaling():
    """GLIDE scales q and k by d**-0.25 each; the default scale d**-0.5 is the same product."""
    q, k, v, ke, ve = _qkv(d=64)
    s = 64**-0.25
    kk, vv = torch.cat([ke, k], 2), torch.cat([ve, v], 2)
    glide = torch.softmax((q * s) @ (kk * s).transpose(-1, -2), dim=-1) @ vv
    torch.testing.assert_close(attention(q, k, v, k_extra=ke, v_extra=ve, backend="math"), glide, atol=1e-5, rtol=1e-5)


def test_out_buffer_in_glide_layout():
    q, k, v, ke, ve = _qkv()
    b, h, t, d = q.shape
    out = torch.empty(b, h, d, t).transpose(2, 3)
    got = attention(q, k, v, k_extra=ke, v_extra=ve, backend="sdpa", out=out)
    assert got is out
    torch.testing.assert_close(out.transpose(2, 3).reshape(b, h * d, t).reshape(b, h, d, t).transpose(2, 3), got)
    torch.testing.assert_close(got, _ref64(q, k, v, ke, ve), atol=1e-5, rtol=1e-5)


def test_half_math_reference_upcasts():
    q, k, v, ke, ve = (t.to(torch.bfloat16) for t in _qkv())
    got = attention_math(q, k, v, ke, ve)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), _ref64(q, k, v, ke, ve), atol=2e-2, rtol=2e-2)


def test_bad_arguments():
    q, k, v, ke, ve = _qkv()
    with pytest.raises(ValueError, match="both k_extra and v_extra"):
        attention(q, k, v, k_extra=ke)
    with pytest.raises(ValueError, match="must be \\(B, heads, T, d\\)"):
        attention(q[0], k, v)
    with pytest.raises(ValueError, match="k_extra, v_extra"):
        attention(q, k, v, k_extra=ke[..., :8], v_extra=ve[..., :8])
    with pytest.raises(ValueError, match="share dtype"):
        attention(q, k.double(), v.double())
    with pytest.raises(ValueError, match="no keys"):
        attention(q, k[:, :, :0], v[:, :, :0])
    with pytest.raises(ValueError, match="out must match"):
        attention(q, k, v, out=torch.empty(1))
    with pytest.raises(ValueError, match="scale must be finite"):
        attention(q, k, v, scale=float("nan"))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_triton_on_cuda(dtype):
    q, k, v, ke, ve = (t.cuda().to(dtype) for t in _qkv(b=2, h=4, t=300, tk=300, s=128, d=64))
    want = attention_math(q, k, v, ke, ve).float()
    for backend in ("triton", "sdpa"):
        got = attention(q, k, v, k_extra=ke, v_extra=ve, backend=backend)
        torch.testing.assert_close(got.float(), want, atol=2e-2, rtol=2e-2)
