"""Triton GroupNorm (+ scale-shift) (+ SiLU): one program per (batch, group), fp32 statistics.

Pass 1 accumulates a per-lane Welford mean/M2 over the group and combines the lanes exactly
(Chan et al.); pass 2 normalises, applies the affine weight/bias, ``* (1 + scale) + shift`` and SiLU,
and stores in the input dtype. NCHW-contiguous and channels_last inputs (and (B, C, L) with either
layout) are walked in their memory order. Imported only when the triton backend runs.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from synthdata.kernels import _triton


# jitted at import, not lazily like the kernel: triton resolves a device-function call through the
# kernel's module globals when it compiles (or interprets) the kernel, so this name must already be one
@_triton.jit
def _group_index(i, N, HW, CPG, CHANNELS_LAST: tl.constexpr):
    """(in range, channel within the group, spatial index) of the group's flat element indices ``i``."""
    ok = i < N
    if CHANNELS_LAST:
        s = i // CPG
        c = i - s * CPG
    else:
        c = i // HW
        s = i - c * HW
    return ok, c, s


def _group_norm_fwd(
    X, Y, W, Bias, SC, SH,
    sxb, sxc, sxs, ssb, ssc, shb, shc,
    HW, CPG, G, N, eps,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, HAS_SS: tl.constexpr, ACT: tl.constexpr,
    CHANNELS_LAST: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    b = (pid // G).to(tl.int64)
    g = pid % G
    base = X + b * sxb + (g * CPG).to(tl.int64) * sxc
    obase = Y + b * sxb + (g * CPG).to(tl.int64) * sxc
    lanes = tl.arange(0, BLOCK)

    mean = tl.full([BLOCK], 0.0, tl.float32)
    m2 = tl.full([BLOCK], 0.0, tl.float32)
    cnt = tl.full([BLOCK], 0.0, tl.float32)
    for start in range(0, N, BLOCK):
        ok, c, s = _group_index(start + lanes, N, HW, CPG, CHANNELS_LAST)
        x = tl.load(base + c * sxc + s * sxs, mask=ok, other=0.0).to(tl.float32)
        # every lane still in range has seen exactly start // BLOCK earlier elements
        inv = 1.0 / (start // BLOCK + 1)
        delta = x - mean
        mean = tl.where(ok, mean + delta * inv, mean)
        m2 = tl.where(ok, m2 + delta * (x - mean), m2)
        cnt = tl.where(ok, cnt + 1.0, cnt)
    total = tl.sum(cnt, 0)
    gmean = tl.sum(cnt * mean, 0) / total
    dev = mean - gmean
    var = (tl.sum(m2, 0) + tl.sum(cnt * dev * dev, 0)) / total
    rstd = 1.0 / tl.sqrt(var + eps)

    for start in range(0, N, BLOCK):
        ok, c, s = _group_index(start + lanes, N, HW, CPG, CHANNELS_LAST)
        off = c * sxc + s * sxs
        x = tl.load(base + off, mask=ok, other=0.0).to(tl.float32)
        y = (x - gmean) * rstd
        ch = g * CPG + c
        if HAS_W:
            y = y * tl.load(W + ch, mask=ok, other=1.0).to(tl.float32)
        if HAS_B:
            y = y + tl.load(Bias + ch, mask=ok, other=0.0).to(tl.float32)
        if HAS_SS:
            sc = tl.load(SC + b * ssb + ch * ssc, mask=ok, other=0.0).to(tl.float32)
            sh = tl.load(SH + b * shb + ch * shc, mask=ok, other=0.0).to(tl.float32)
            y = y * (1.0 + sc) + sh
        if ACT:
            y = y * tl.sigmoid(y)
        tl.store(obase + off, y.to(Y.dtype.element_ty), mask=ok)


@functools.cache
def _kernel():
    return _triton.jit(_group_norm_fwd)


def group_norm_triton(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    groups: int,
    eps: float,
    scale: torch.Tensor | None,
    shift: torch.Tensor | None,
    act: bool,
    channels_last: bool,
) -> torch.Tensor:
    """Inputs validated by the caller: x dense (B, C, S...) in NC* or channels-last order; scale/shift (B, C)."""
    bsz, c = x.shape[:2]
    hw = x[0, 0].numel()
    cpg = c // groups
    n = cpg * hw
    y = torch.empty_like(x)
    assert y.stride() == x.stride()
    stride_s = x.stride(-1)
    if _triton.interpreting():
        block, extra = min(triton.next_power_of_2(n), 1024), {}
    else:
        block = min(triton.next_power_of_2(n), 2048)
        extra = {"num_warps": 4 if block <= 1024 else 8, **_triton.FP_FUSION}
    w = x if weight is None else weight.contiguous()
    bb = x if bias is None else bias.contiguous()
    sc = x if scale is None else scale
    sh = x if shift is None else shift
    _kernel()[(bsz * groups,)](
        x, y, w, bb, sc, sh,
        x.stride(0), x.stride(1), stride_s,
        sc.stride(0) if scale is not None else 0, sc.stride(1) if scale is not None else 0,
        sh.stride(0) if shift is not None else 0, sh.stride(1) if shift is not None else 0,
        hw, cpg, groups, n, float(eps),
        HAS_W=weight is not None, HAS_B=bias is not None, HAS_SS=scale is not None, ACT=bool(act),
        CHANNELS_LAST=channels_last, BLOCK=block, **extra,
    )  # fmt: skip
    return y
