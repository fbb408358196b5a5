"""The two hot spots of GLIDE, each in one place: attention and GroupNorm(+scale/shift)(+SiLU).

Every attention in the UNet and the text transformer calls :func:`attention`; every GroupNorm calls
:func:`group_norm_act` (optionally with a scale/shift from the timestep embedding). A fused-kernel backend
(``synthdata.kernels``) can be routed in here without touching the models.

Semantics (the official ones):

- ``attention(q, k, v)`` on ``(B, heads, T, d)`` / ``(B, heads, S, d)`` tensors: ``softmax((q·s)(k·s)ᵀ)·v``
  with ``s = d**-0.25``, no mask, softmax computed in float32 and cast back. In float32 the explicit
  reference math is used (it matches the official implementation to rounding); other dtypes use
  ``scaled_dot_product_attention``.
- ``group_norm_act(x, norm, scale=None, shift=None, act=...)``: GroupNorm computed in float32 and cast back
  to ``x.dtype``; then ``* (1 + scale) + shift`` when given; then SiLU when ``act``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Multi-head attention without mask: ``(B, H, T, d), (B, H, S, d), (B, H, S, d) -> (B, H, T, d)``."""
    if q.dtype == torch.float32:
        scale = 1.0 / math.sqrt(math.sqrt(q.shape[-1]))
        weight = torch.matmul(q * scale, (k * scale).transpose(-1, -2))
        weight = torch.softmax(weight, dim=-1)
        return torch.matmul(weight, v)
    return F.scaled_dot_product_attention(q, k, v)


def group_norm_act(
    x: Tensor,
    norm: nn.GroupNorm,
    *,
    act: bool,
    scale: Tensor | None = None,
    shift: Tensor | None = None,
) -> Tensor:
    """``silu?(groupnorm_fp32(x).to(x.dtype) * (1 + scale) + shift)`` (scale/shift broadcast over space)."""
    y = F.group_norm(x.float(), norm.num_groups, norm.weight, norm.bias, norm.eps).to(x.dtype)
    if scale is not None:
        y = y * (1 + scale)
    if shift is not None:
        y = y + shift
    if act:
        y = F.silu(y)
    return y


class GroupNorm32(nn.GroupNorm):
    """GroupNorm with 32 groups computed in float32 (parameters stay float32), optional fused SiLU."""

    def __init__(self, channels: int, *, act: bool, groups: int = 32, eps: float = 1e-5):
        super().__init__(num_groups=groups, num_channels=channels, eps=eps)
        self.act = act

    def forward(self, x: Tensor, scale: Tensor | None = None, shift: Tensor | None = None) -> Tensor:
        return group_norm_act(x, self, act=self.act, scale=scale, shift=shift)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back (parameters stay float32)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps).to(x.dtype)


def timestep_embedding(timesteps: Tensor, dim: int, max_period: int = 10000) -> Tensor:
    """Sinusoidal embedding ``[cos(t·f), sin(t·f)]`` of (original, not respaced) timesteps, float32."""
    half = dim // 2
    steps = torch.arange(0, half, dtype=torch.float32, device=timesteps.device)
    freqs = torch.exp(-math.log(max_period) * steps / half)  # on the device: no host copy per step
    args = timesteps[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb
