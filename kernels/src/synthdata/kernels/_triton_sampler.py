"""Triton fused sampler updates: guidance combine, x0 prediction, clipping, posterior mean, noise.

One elementwise kernel over ``x_t`` (grid: chunks of one sample x batch rows). The per-step scalars
come from a small fp32 device vector (and the guidance scale from a scalar argument or a 0-d device
tensor), so a CUDA graph can capture one step and be fed the step's coefficients through static buffers.
Imported only when the triton backend runs.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from synthdata.kernels import _triton


def _sampler_fwd(
    MO, X, NZ, OUT, COEF, GS, gs, NPB, MSB, BH,
    DDIM: tl.constexpr, GUIDED: tl.constexpr, GS_PTR: tl.constexpr, HAS_NOISE: tl.constexpr,
    CLIP: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    row = tl.program_id(1).to(tl.int64)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    ok = i < NPB
    x = tl.load(X + row * NPB + i, mask=ok, other=0.0).to(tl.float32)
    if GUIDED:
        if GS_PTR:  # noqa: SIM108 (a statement-level branch on a constexpr: no select is emitted)
            g = tl.load(GS).to(tl.float32)
        else:
            g = gs
        cond_row = row % BH
        e_c = tl.load(MO + cond_row * MSB + i, mask=ok, other=0.0).to(tl.float32)
        e_u = tl.load(MO + (cond_row + BH) * MSB + i, mask=ok, other=0.0).to(tl.float32)
        eps = e_u + g * (e_c - e_u)
    else:
        eps = tl.load(MO + row * MSB + i, mask=ok, other=0.0).to(tl.float32)
    c0 = tl.load(COEF + 0)
    c1 = tl.load(COEF + 1)
    c2 = tl.load(COEF + 2)
    c3 = tl.load(COEF + 3)
    c4 = tl.load(COEF + 4)
    x0 = c0 * x - c1 * eps
    if CLIP:
        x0 = tl.minimum(tl.maximum(x0, -1.0), 1.0)
    if DDIM:
        # coef: sqrt(1/abar), sqrt(1/abar - 1), sqrt(abar_prev), sqrt(1 - abar_prev - sigma^2), sigma * (t > 0)
        eps2 = (c0 * x - x0) / c1
        res = x0 * c2 + c3 * eps2
        if HAS_NOISE:
            nz = tl.load(NZ + row * NPB + i, mask=ok, other=0.0).to(tl.float32)
            res = res + c4 * nz
    else:
        # coef: sqrt(1/abar), sqrt(1/abar - 1), posterior coef1, coef2, min_log, max_log, (t > 0)
        res = c2 * x0 + c3 * x
        if HAS_NOISE:
            c5 = tl.load(COEF + 5)
            c6 = tl.load(COEF + 6)
            v = tl.load(MO + row * MSB + NPB + i, mask=ok, other=0.0).to(tl.float32)
            frac = (v + 1.0) / 2.0
            log_var = frac * c5 + (1.0 - frac) * c4
            nz = tl.load(NZ + row * NPB + i, mask=ok, other=0.0).to(tl.float32)
            res = res + c6 * tl.exp(0.5 * log_var) * nz
    tl.store(OUT + row * NPB + i, res.to(OUT.dtype.element_ty), mask=ok)


@functools.cache
def _kernel():
    return _triton.jit(_sampler_fwd)


def sampler_step_triton(
    model_out: torch.Tensor,
    x_t: torch.Tensor,
    noise: torch.Tensor | None,
    coefs: torch.Tensor,
    guidance_scale: float | torch.Tensor | None,
    clip_denoised: bool,
    ddim: bool,
    out: torch.Tensor,
) -> torch.Tensor:
    """All tensors validated and contiguous; ``coefs`` fp32 on x_t's device; writes ``out`` (may be x_t)."""
    rows = x_t.shape[0]
    npb = x_t[0].numel()
    msb = model_out[0].numel()
    bh = model_out.shape[0] // 2 if guidance_scale is not None else 1
    gs_ptr = isinstance(guidance_scale, torch.Tensor)
    gs_tensor = guidance_scale if gs_ptr else coefs
    gs_value = 0.0 if guidance_scale is None or gs_ptr else float(guidance_scale)
    if _triton.interpreting():
        block, extra = min(triton.next_power_of_2(npb), 1024), {}
    else:
        block, extra = 1024, {"num_warps": 4, **_triton.FP_FUSION}
    grid = (triton.cdiv(npb, block), rows)
    _kernel()[grid](
        model_out, x_t, x_t if noise is None else noise, out, coefs, gs_tensor, gs_value, npb, msb, bh,
        DDIM=ddim, GUIDED=guidance_scale is not None, GS_PTR=gs_ptr, HAS_NOISE=noise is not None,
        CLIP=bool(clip_denoised), BLOCK=block, **extra,
    )  # fmt: skip
    return out
