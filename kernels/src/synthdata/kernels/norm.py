"""GroupNorm(32) in fp32, optionally followed by GLIDE's scale-shift and SiLU, fused.

``group_norm_silu(x, w, b)`` is GLIDE's ``in_layers[:2]`` (GroupNorm32 then SiLU); with
``scale``/``shift`` it is ``silu(group_norm(x) * (1 + scale) + shift)`` (``use_scale_shift_norm``);
``act=False`` drops the SiLU (plain ``GroupNorm32``). Statistics and arithmetic are fp32, the result is
cast once to ``x.dtype``. (GLIDE's half-precision code casts after the norm and applies the scale-shift
in half precision; the fused form rounds once, so in fp16 it differs from that by rounding only. In
fp32 the ``torch`` backend follows GLIDE's operations exactly.)

Backends: ``triton`` (CUDA, fp32/fp16/bf16, NCHW-contiguous or channels_last, no autograd) and
``torch`` (``F.group_norm`` on the fp32 upcast). Select with ``backend=`` or ``SYNTHDATA_NORM_BACKEND``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synthdata.kernels import _triton
from synthdata.kernels._select import Op, grad_reason, resolve

NORM = Op("norm", "SYNTHDATA_NORM_BACKEND", ("triton", "torch"))


def _layout(x: torch.Tensor) -> str | None:
    """``"nchw"``, ``"channels_last"`` (channel dim innermost), or ``None`` if neither is dense."""
    if x.is_contiguous():
        return "nchw"
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return "channels_last"
    if x.dim() == 3 and x.transpose(1, 2).is_contiguous():
        return "channels_last"
    return None


def _as_bc(name: str, t: torch.Tensor | None, bsz: int, c: int) -> torch.Tensor | None:
    if t is None:
        return None
    if t.numel() != bsz * c or t.shape[:2] != (bsz, c) or any(s != 1 for s in t.shape[2:]):
        raise ValueError(f"group_norm_silu: {name} must be (B, C) or (B, C, 1, ...) = ({bsz}, {c}); got {tuple(t.shape)}")
    return t.reshape(bsz, c)


def group_norm_torch(x, weight, bias, *, groups=32, eps=1e-5, scale=None, shift=None, act=True) -> torch.Tensor:
    """The reference: ``F.group_norm`` on the fp32 upcast, scale-shift and ``y * sigmoid(y)`` in fp32."""
    y = F.group_norm(
        x.float(), groups, None if weight is None else weight.float(), None if bias is None else bias.float(), eps
    )
    if scale is not None:
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
        y = y * (1 + scale.float().reshape(shape)) + shift.float().reshape(shape)
    if act:
        y = y * torch.sigmoid(y)
    return y.to(x.dtype)


def group_norm_silu(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    *,
    groups: int = 32,
    eps: float = 1e-5,
    scale: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
    act: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """``silu(group_norm(x) [* (1 + scale) + shift])`` with fp32 statistics, in ``x.dtype``.

    ``x``: ``(B, C, H, W)`` or ``(B, C, L)`` (channels_last accepted and kept); ``weight``, ``bias``:
    ``(C,)`` or ``None``; ``scale``, ``shift``: ``(B, C)`` or ``(B, C, 1, 1)`` (views such as the halves of
    ``emb_out.chunk(2, dim=1)`` are fine), both or neither; ``act=False`` leaves out the SiLU.
    """
    if x.dim() not in (3, 4):
        raise ValueError(f"group_norm_silu: x must be (B, C, H, W) or (B, C, L); got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"group_norm_silu: floating-point x expected, got {x.dtype}")
    bsz, c = x.shape[:2]
    if groups <= 0 or c % groups:
        raise ValueError(f"group_norm_silu: {c} channels do not split into {groups} groups")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (c,):
            raise ValueError(f"group_norm_silu: {name} must be ({c},); got {tuple(p.shape)}")
    if (scale is None) != (shift is None):
        raise ValueError("group_norm_silu: pass both scale and shift, or neither")
    scale = _as_bc("scale", scale, bsz, c)
    shift = _as_bc("shift", shift, bsz, c)
    layout = _layout(x)
    auto = NORM.requested(backend)[0] == "auto"

    def triton_reason() -> str | None:
        if layout is None:
            return "x is neither contiguous nor channels_last"
        if x.dtype not in (torch.float16, torch.bfloat16, torch.float32):
            return f"dtype {x.dtype}"
        if x.numel() == 0:
            return "empty input"
        if (r := grad_reason(x, weight, bias, scale, shift)) is not None:
            return r
        return _triton.device_problem(x, weight, bias, scale, shift, auto=auto)

    name = resolve(NORM, backend, {"triton": triton_reason, "torch": lambda: None})
    if name == "triton":
        from synthdata.kernels._triton_norm import group_norm_triton

        return group_norm_triton(x, weight, bias, groups, eps, scale, shift, act, layout == "channels_last")
    return group_norm_torch(x, weight, bias, groups=groups, eps=eps, scale=scale, shift=shift, act=act)
