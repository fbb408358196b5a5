"""Attention for GLIDE's blocks: image queries against [extra (text) keys; image keys].

``attention(q, k, v, k_extra=..., v_extra=...)`` equals
``softmax(q @ cat([k_extra, k]).T * scale) @ cat([v_extra, v])`` with no mask (GLIDE attends to padded
text tokens too) and ``scale = d ** -0.5`` by default. Backends, in ``"auto"`` preference order:

- ``triton``: flash-attention kernel that walks the extra keys then the image keys without
  concatenating them; CUDA, fp16/bf16, head dim 16/32/64/128, one of the two inner dims contiguous,
  no autograd (fp32 and CPU tensors too when triton runs in its interpreter, explicit requests only);
- ``xformers``: ``xformers.ops.memory_efficient_attention`` (optional, detected at run time; CUDA);
- ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` on the concatenated keys/values;
- ``math``: the fp32 reference (upcast, matmul, softmax, matmul, cast back).

Select with ``backend=`` or ``SYNTHDATA_ATTN_BACKEND``; see :mod:`synthdata.kernels._select`.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from typing import Any

import torch
import torch.nn.functional as F

from synthdata.kernels import _triton
from synthdata.kernels._select import Op, grad_reason, resolve

ATTENTION = Op("attention", "SYNTHDATA_ATTN_BACKEND", ("triton", "xformers", "sdpa", "math"))
TRITON_HEAD_DIMS = (16, 32, 64, 128)
_HALF = (torch.float16, torch.bfloat16)


_xformers_state: list[tuple[Any, str | None]] = []  # a plain global (not functools.cache): torch.compile reads it


def _xformers_ops() -> tuple[Any, str | None]:
    """``(xformers.ops, None)`` if importable, else ``(None, reason)``; looked up once per process."""
    if not _xformers_state:
        if importlib.util.find_spec("xformers") is None:
            _xformers_state.append((None, "xformers is not installed"))
        else:
            try:
                _xformers_state.append((importlib.import_module("xformers.ops"), None))
            except Exception as exc:  # its wheels are built against one torch version; a mismatch raises here
                reason = f"xformers is installed but not importable ({type(exc).__name__}: {exc})"
                _xformers_state.append((None, reason))
    return _xformers_state[0]


def _check_inputs(q, k, v, k_extra, v_extra, out) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"attention: {name} must be a tensor")
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"attention: q, k, v must be (B, heads, T, d); got {q.shape}, {k.shape}, {v.shape}")
    bsz, heads, _, d = q.shape
    if k.shape[:2] != (bsz, heads) or k.shape[3] != d or v.shape != k.shape:
        raise ValueError(f"attention: k, v must be (B, heads, Tk, d) matching q {tuple(q.shape)}; got {k.shape}, {v.shape}")
    if (k_extra is None) != (v_extra is None):
        raise ValueError("attention: pass both k_extra and v_extra, or neither")
    tensors = [q, k, v]
    if k_extra is not None:
        if k_extra.dim() != 4 or k_extra.shape[:2] != (bsz, heads) or k_extra.shape[3] != d or v_extra.shape != k_extra.shape:
            raise ValueError(
                f"attention: k_extra, v_extra must be (B, heads, S, d) matching q {tuple(q.shape)}; "
                f"got {k_extra.shape}, {v_extra.shape}"
            )
        tensors += [k_extra, v_extra]
    if not q.is_floating_point():
        raise TypeError(f"attention: floating-point inputs expected, got {q.dtype}")
    if any(t.dtype != q.dtype or t.device != q.device for t in tensors):
        raise ValueError("attention: q, k, v (and the extras) must share dtype and device")
    if k.shape[2] + (0 if k_extra is None else k_extra.shape[2]) == 0:
        raise ValueError("attention: no keys (Tk + S == 0)")
    if out is not None and (out.shape != q.shape or out.dtype != q.dtype or out.device != q.device):
        raise ValueError(f"attention: out must match q {tuple(q.shape)} {q.dtype} {q.device}")


def _triton_reason(auto: bool, q, k, v, k_extra, v_extra, out) -> str | None:
    tensors = [t for t in (q, k, v, k_extra, v_extra) if t is not None]
    interp = _triton.interpreting()
    allowed = (*_HALF, torch.float32) if interp else _HALF
    if q.dtype not in allowed:
        return f"dtype {q.dtype} (needs fp16/bf16)"
    if q.shape[-1] not in TRITON_HEAD_DIMS:
        return f"head dim {q.shape[-1]} not in {TRITON_HEAD_DIMS}"
    for t in tensors:
        if t.stride(-1) != 1 and t.stride(-2) != 1:
            return "an input has neither its head dim nor its sequence dim contiguous"
    if (r := grad_reason(*tensors)) is not None:
        return r
    return _triton.device_problem(*tensors, out, auto=auto)


def _xformers_reason(q, k, v, k_extra, v_extra) -> str | None:
    ops, reason = _xformers_ops()
    if ops is None:
        return reason
    if not q.is_cuda:
        return "not a CUDA tensor"
    if q.dtype not in (*_HALF, torch.float32):
        return f"dtype {q.dtype}"
    return grad_reason(q, k, v, k_extra, v_extra)


def _concat(k, v, k_extra, v_extra):
    if k_extra is None:
        return k, v
    return torch.cat([k_extra, k], dim=2), torch.cat([v_extra, v], dim=2)


def attention_math(q, k, v, k_extra=None, v_extra=None, *, scale: float | None = None) -> torch.Tensor:
    """The fp32 reference: plain matmul/softmax/matmul on the concatenated keys, cast back to q's dtype."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    k_all, v_all = _concat(k, v, k_extra, v_extra)
    weight = torch.matmul(q.float(), k_all.float().transpose(-1, -2)) * scale
    return torch.matmul(torch.softmax(weight, dim=-1), v_all.float()).to(q.dtype)


def _sdpa(q, k, v, k_extra, v_extra, scale):
    k_all, v_all = _concat(k, v, k_extra, v_extra)
    return F.scaled_dot_product_attention(q, k_all, v_all, scale=scale)


def _xformers(q, k, v, k_extra, v_extra, scale):
    ops, _ = _xformers_ops()
    k_all, v_all = _concat(k, v, k_extra, v_extra)
    # xformers takes (B, T, heads, d)
    o = ops.memory_efficient_attention(
        q.transpose(1, 2), k_all.transpose(1, 2), v_all.transpose(1, 2), attn_bias=None, scale=scale
    )
    return o.transpose(1, 2)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    k_extra: torch.Tensor | None = None,
    v_extra: torch.Tensor | None = None,
    scale: float | None = None,
    backend: str = "auto",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention of ``q`` over ``cat([k_extra, k])`` / ``cat([v_extra, v])`` (no mask), shape of ``q``.

    ``q``: ``(B, heads, T, d)``; ``k``, ``v``: ``(B, heads, Tk, d)``; ``k_extra``, ``v_extra``:
    ``(B, heads, S, d)`` or ``None``. ``scale`` defaults to ``d ** -0.5``. ``out`` (shape and dtype of
    ``q``, any strides) receives the result when given, e.g. ``torch.empty(B, heads, d, T).transpose(2, 3)``
    to get GLIDE's ``(B, heads * d, T)`` layout without a copy (the triton kernel writes it directly).
    """
    _check_inputs(q, k, v, k_extra, v_extra, out)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    scale = float(scale)
    if not math.isfinite(scale):
        raise ValueError(f"attention: scale must be finite, got {scale}")
    checks = {
        "triton": lambda: _triton_reason(backend_is_auto, q, k, v, k_extra, v_extra, out),
        "xformers": lambda: _xformers_reason(q, k, v, k_extra, v_extra),
        "sdpa": lambda: None,
        "math": lambda: None,
    }
    backend_is_auto = ATTENTION.requested(backend)[0] == "auto"
    name = resolve(ATTENTION, backend, checks)
    if name == "triton":
        from synthdata.kernels._triton_attention import attention_triton

        return attention_triton(q, k, v, k_extra, v_extra, scale, torch.empty_like(q) if out is None else out)
    if name == "xformers":
        result = _xformers(q, k, v, k_extra, v_extra, scale)
    elif name == "sdpa":
        result = _sdpa(q, k, v, k_extra, v_extra, scale)
    else:
        result = attention_math(q, k, v, k_extra, v_extra, scale=scale)
    if out is None:
        return result
    return out.copy_(result)
