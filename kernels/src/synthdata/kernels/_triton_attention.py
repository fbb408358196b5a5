"""Triton flash-attention forward for GLIDE's blocks: extra (text) keys/values, then the image ones.

The extra keys are visited first and the image keys second, with one online softmax across both, so
``cat([k_extra, k])`` is never materialised. Any strides are accepted (GLIDE's own layout has the
sequence dimension contiguous); the softmax runs in fp32 with ``exp2``. Forward only.
Triton 3.9's CPU interpreter gets ``tl.dot`` wrong on bf16 operands (numpy has no bf16), so there
(and only there) bf16 tiles are upcast to fp32 before each dot (``DOT_F32``); compiled kernels dot in bf16.
Imported only when the triton backend runs (it imports triton).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import triton
import triton.language as tl

from synthdata.kernels import _triton


# jitted at import, not lazily like the kernel: triton resolves a device-function call through the
# kernel's module globals when it compiles (or interprets) the kernel, so this name must already be one
@_triton.jit
def _attn_keys(
    acc, m_i, l_i, q, k_base, v_base, skn, skd, svn, svd, L, qk_scale,
    D: tl.constexpr, BLOCK_N: tl.constexpr, DOT_F32: tl.constexpr,
):  # fmt: skip
    """Online-softmax update of (acc, m_i, l_i) over ``L`` keys/values of one (batch, head)."""
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    for start in range(0, L, BLOCK_N):
        n = start + offs_n
        col_ok = n[None, :] < L
        kt = tl.load(k_base + n[None, :] * skn + offs_d[:, None] * skd, mask=col_ok, other=0.0)
        if DOT_F32:
            kt = kt.to(tl.float32)
        qk = tl.dot(q, kt) * qk_scale
        qk = tl.where(col_ok, qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        p = tl.math.exp2(qk - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + n[:, None] * svn + offs_d[None, :] * svd, mask=n[:, None] < L, other=0.0)
        if DOT_F32:
            v = v.to(tl.float32)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    return acc, m_i, l_i


def _attn_fwd(
    Q, K, V, KE, VE, Out,
    sqb, sqh, sqm, sqd,
    skb, skh, skn, skd,
    svb, svh, svn, svd,
    seb, seh, sen, sed,
    sfb, sfh, sfn, sfd,
    sob, soh, som, sod,
    H, T, TK, S, qk_scale,
    D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, DOT_F32: tl.constexpr,
):  # fmt: skip
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, D)
    row_ok = offs_m[:, None] < T
    q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqm + offs_d[None, :] * sqd, mask=row_ok, other=0.0)
    if DOT_F32:
        q = q.to(tl.float32)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.full([BLOCK_M], 0.0, tl.float32)
    acc = tl.full([BLOCK_M, D], 0.0, tl.float32)

    # the extra (text) keys and values first, then the image ones: one online softmax across both
    acc, m_i, l_i = _attn_keys(
        acc, m_i, l_i, q, KE + b * seb + h * seh, VE + b * sfb + h * sfh, sen, sed, sfn, sfd, S, qk_scale,
        D, BLOCK_N, DOT_F32,
    )  # fmt: skip
    acc, m_i, l_i = _attn_keys(
        acc, m_i, l_i, q, K + b * skb + h * skh, V + b * svb + h * svh, skn, skd, svn, svd, TK, qk_scale,
        D, BLOCK_N, DOT_F32,
    )  # fmt: skip

    out = acc / l_i[:, None]
    o_ptrs = Out + b * sob + h * soh + offs_m[:, None] * som + offs_d[None, :] * sod
    tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=row_ok)


@functools.cache
def _kernel():
    return _triton.jit(_attn_fwd)


def _config(t: int, d: int) -> dict[str, Any]:
    """Fixed launch configurations (no autotuning: it would benchmark inside CUDA-graph capture)."""
    if _triton.interpreting():
        return {"BLOCK_M": 32, "BLOCK_N": 32}
    block_m = 128 if t > 64 else 64
    if d <= 64:
        return {"BLOCK_M": block_m, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3, **_triton.FP_FUSION}
    return {"BLOCK_M": block_m, "BLOCK_N": 64, "num_warps": 8, "num_stages": 2, **_triton.FP_FUSION}


def attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_extra: torch.Tensor | None,
    v_extra: torch.Tensor | None,
    scale: float,
    out: torch.Tensor,
) -> torch.Tensor:
    """Shapes are 4-D ``(B, H, *, d)`` and already validated; writes into ``out`` and returns it."""
    bsz, heads, t, d = q.shape
    if k_extra is None:
        k_extra, v_extra, s = k, v, 0
    else:
        assert v_extra is not None
        s = k_extra.shape[2]
    cfg = _config(t, d)
    grid = (triton.cdiv(t, cfg["BLOCK_M"]), bsz * heads)
    _kernel()[grid](
        q, k, v, k_extra, v_extra, out,
        *q.stride(), *k.stride(), *v.stride(), *k_extra.stride(), *v_extra.stride(), *out.stride(),
        heads, t, k.shape[2], s, scale * math.log2(math.e),
        D=d, DOT_F32=_triton.interpreting() and q.dtype == torch.bfloat16, **cfg,
    )  # fmt: skip
    return out
