"""Fused classifier-free guidance + sampler updates (GLIDE's ancestral and DDIM steps).

GLIDE runs the model on ``[cond; uncond]`` (``2B`` rows) and its output has ``2C`` channels: ``eps``
(``C``) and the learned-range variance values ``v`` (``C``). One step here does, in fp32:

- guidance: ``eps = eps_u + s * (eps_c - eps_u)`` (skipped when ``guidance_scale is None``);
- ``x0 = sqrt(1/abar_t) * x_t - sqrt(1/abar_t - 1) * eps``, clipped to [-1, 1] if ``clip_denoised``;
- ancestral (:func:`guided_ancestral_step`): ``mean = coef1 * x0 + coef2 * x_t``,
  ``log_var = frac * log(beta_t) + (1 - frac) * posterior_log_variance_clipped`` with ``frac = (v + 1) / 2``,
  ``x_{t-1} = mean + (t > 0) * exp(0.5 * log_var) * noise``;
- DDIM (:func:`ddim_step`): ``eps' = (sqrt(1/abar_t) * x_t - x0) / sqrt(1/abar_t - 1)``,
  ``x_{t-1} = x0 * sqrt(abar_prev) + sqrt(1 - abar_prev - sigma^2) * eps' + (t > 0) * sigma * noise``.

Batch conventions: without guidance ``model_out`` has the rows of ``x_t``. With guidance ``model_out``
has ``2B`` rows and ``x_t`` either ``2B`` rows (GLIDE's own loop: both halves are updated with the
guided eps and each row's own variance values, so random streams match the official code) or ``B``
rows (only the conditional half is carried; half the update work and noise).

The per-step scalars are a packed fp32 vector on ``x_t``'s device (:class:`AncestralCoefs` /
:class:`DDIMCoefs` build one; :class:`SamplerTables` holds every step's row and hands out one with a
device index, so a captured CUDA graph can be fed ``t`` through a static buffer). The ``torch`` backend
is the reference and follows the official operation order in fp32; ``triton`` fuses it into one kernel.
Select with ``backend=`` or ``SYNTHDATA_SAMPLER_BACKEND``.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from typing import TypedDict, Unpack

import torch

from synthdata.kernels import _triton
from synthdata.kernels._select import Op, grad_reason, resolve

SAMPLER = Op("sampler", "SYNTHDATA_SAMPLER_BACKEND", ("triton", "torch"))

Scalar = float | torch.Tensor


@dataclass(frozen=True, slots=True)
class AncestralCoefs:
    """The step-``t`` scalars of an ancestral (learned-range variance) step; floats or 0-d tensors."""

    sqrt_recip_alphas_cumprod: Scalar
    sqrt_recipm1_alphas_cumprod: Scalar
    posterior_mean_coef1: Scalar
    posterior_mean_coef2: Scalar
    posterior_log_variance_clipped: Scalar
    log_beta: Scalar
    nonzero: Scalar  # 1.0 if t > 0 else 0.0

    def pack(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The fp32 vector (7,) the step functions take."""
        return _pack(astuple(self), device)


@dataclass(frozen=True, slots=True)
class DDIMCoefs:
    """The step-``t`` scalars of a DDIM step; build them with :meth:`from_alphas` (GLIDE's fp32 order)."""

    sqrt_recip_alphas_cumprod: Scalar
    sqrt_recipm1_alphas_cumprod: Scalar
    sqrt_alphas_cumprod_prev: Scalar
    eps_coef: Scalar  # sqrt(1 - abar_prev - sigma^2)
    noise_coef: Scalar  # (t > 0) * sigma

    @classmethod
    def from_alphas(
        cls,
        alpha_bar: torch.Tensor,
        alpha_bar_prev: torch.Tensor,
        sqrt_recip_alphas_cumprod: torch.Tensor,
        sqrt_recipm1_alphas_cumprod: torch.Tensor,
        eta: float,
        nonzero: torch.Tensor,
    ) -> DDIMCoefs:
        """fp32 tensors (any matching shape): sigma and the derived terms computed as GLIDE's ddim_sample does."""
        sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
        return cls(
            sqrt_recip_alphas_cumprod,
            sqrt_recipm1_alphas_cumprod,
            torch.sqrt(alpha_bar_prev),
            torch.sqrt(1 - alpha_bar_prev - sigma**2),
            nonzero * sigma,
        )

    def pack(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The fp32 vector (5,) the step functions take."""
        return _pack(astuple(self), device)


def _pack(values: tuple[Scalar, ...], device) -> torch.Tensor:
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if device is None:
        device = tensors[0].device if tensors else "cpu"
    if not tensors:
        return torch.tensor(values, dtype=torch.float32, device=device)
    return torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device).reshape(()) for v in values])


class SamplerTables:
    """Every step's packed coefficients for one (respaced) schedule, fp32 on one device.

    Built from the float64 ``betas`` of the schedule actually sampled (after respacing), following
    the official ``GaussianDiffusion`` arithmetic in float64 and rounding to fp32 like its
    ``_extract_into_tensor``. ``ancestral`` is ``(N, 7)``; :meth:`ddim` gives ``(N, 5)`` for one eta.
    Index rows with :meth:`row` (a python int, or a 0-d/1-element integer tensor on the device: no
    host sync, so it can run inside a captured CUDA graph).
    """

    def __init__(self, betas, device: torch.device | str | None = None):
        b = torch.as_tensor(betas, dtype=torch.float64).cpu()
        if b.dim() != 1 or len(b) < 2 or not bool(((b > 0) & (b < 1)).all()):
            raise ValueError("SamplerTables: betas must be a 1-D array of at least 2 values in (0, 1)")
        alphas = 1.0 - b
        ac = torch.cumprod(alphas, 0)
        ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
        post_var = b * (1.0 - ac_prev) / (1.0 - ac)
        self.num_steps = len(b)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.alphas_cumprod = ac.float().to(self.device)
        self.alphas_cumprod_prev = ac_prev.float().to(self.device)
        self.sqrt_recip_alphas_cumprod = torch.sqrt(1.0 / ac).float().to(self.device)
        self.sqrt_recipm1_alphas_cumprod = torch.sqrt(1.0 / ac - 1).float().to(self.device)
        nonzero = (torch.arange(len(b)) > 0).float().to(self.device)
        self.nonzero = nonzero
        self.ancestral = torch.stack(
            [
                self.sqrt_recip_alphas_cumprod,
                self.sqrt_recipm1_alphas_cumprod,
                (b * torch.sqrt(ac_prev) / (1.0 - ac)).float().to(self.device),
                ((1.0 - ac_prev) * torch.sqrt(alphas) / (1.0 - ac)).float().to(self.device),
                torch.log(torch.cat([post_var[1:2], post_var[1:]])).float().to(self.device),
                torch.log(b).float().to(self.device),
                nonzero,
            ],
            dim=1,
        ).contiguous()
        self._ddim: dict[float, torch.Tensor] = {}

    def ddim(self, eta: float = 0.0) -> torch.Tensor:
        """``(N, 5)`` DDIM rows for ``eta`` (cached per eta)."""
        eta = float(eta)
        if eta not in self._ddim:
            c = DDIMCoefs.from_alphas(
                self.alphas_cumprod,
                self.alphas_cumprod_prev,
                self.sqrt_recip_alphas_cumprod,
                self.sqrt_recipm1_alphas_cumprod,
                eta,
                self.nonzero,
            )
            self._ddim[eta] = torch.stack(list(astuple(c)), dim=1).contiguous()
        return self._ddim[eta]

    @staticmethod
    def row(table: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """Row ``t`` of ``table`` as a contiguous (K,) vector; ``t`` may be a device tensor (graph-safe)."""
        if isinstance(t, torch.Tensor):
            return torch.index_select(table, 0, t.reshape(1).to(table.device, torch.long)).reshape(-1)
        return table[int(t)]


def _check(model_out, x_t, noise, coefs, guidance_scale, out, *, ddim: bool, name: str) -> None:
    if x_t.dim() < 2 or model_out.dim() != x_t.dim():
        raise ValueError(f"{name}: model_out and x_t must be (rows, C, ...) alike; got {model_out.shape}, {x_t.shape}")
    if not (x_t.is_floating_point() and model_out.is_floating_point()):
        raise TypeError(f"{name}: floating-point tensors expected")
    c = x_t.shape[1]
    allowed = (c, 2 * c) if ddim else (2 * c,)
    if model_out.shape[1] not in allowed or model_out.shape[2:] != x_t.shape[2:]:
        raise ValueError(
            f"{name}: model_out must be (rows, {' or '.join(map(str, allowed))}, {tuple(x_t.shape[2:])}) "
            f"for x_t {tuple(x_t.shape)}; got {tuple(model_out.shape)}"
        )
    rows_m, rows_x = model_out.shape[0], x_t.shape[0]
    if guidance_scale is None:
        if rows_m != rows_x:
            raise ValueError(f"{name}: without guidance model_out and x_t need the same rows ({rows_m} != {rows_x})")
    elif rows_m % 2 or rows_x not in (rows_m, rows_m // 2):
        raise ValueError(
            f"{name}: with guidance model_out holds [cond; uncond] (even rows) and x_t the same rows or the "
            f"conditional half; got {rows_m} and {rows_x}"
        )
    if isinstance(guidance_scale, torch.Tensor) and guidance_scale.numel() != 1:
        raise ValueError(f"{name}: guidance_scale tensor must hold one value")
    for label, t in (("noise", noise), ("out", out)):
        if t is not None and (t.shape != x_t.shape or t.device != x_t.device):
            raise ValueError(f"{name}: {label} must have x_t's shape {tuple(x_t.shape)} and device")
    if out is not None and out.dtype != x_t.dtype:
        raise ValueError(f"{name}: out must have x_t's dtype {x_t.dtype}")
    k = 5 if ddim else 7
    if coefs.shape != (k,) or coefs.dtype != torch.float32 or coefs.device != x_t.device:
        raise ValueError(f"{name}: coefs must be a fp32 ({k},) vector on {x_t.device}; got {coefs.dtype} {tuple(coefs.shape)} on {coefs.device}")


def _guided_eps(model_out, c, x_rows, guidance_scale) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fp32 eps for the x rows and those rows' own variance values (``None`` if model_out has none)."""
    mo = model_out.float()
    eps_all, var_all = mo[:, :c], (mo[:, c:] if mo.shape[1] == 2 * c else None)
    if guidance_scale is None:
        eps = eps_all
    else:
        half = len(eps_all) // 2
        cond_eps, uncond_eps = eps_all[:half], eps_all[half:]
        g = guidance_scale.float().reshape(()) if isinstance(guidance_scale, torch.Tensor) else guidance_scale
        half_eps = uncond_eps + g * (cond_eps - uncond_eps)
        eps = half_eps if x_rows == half else torch.cat([half_eps, half_eps], dim=0)
    return eps, None if var_all is None else var_all[:x_rows]


def _predict_x0(model_out, x_t, coefs, guidance_scale, clip_denoised):
    """fp32 (x_t, eps, the rows' variance values, coefs as broadcastable scalars, predicted x0); coefs
    start with sqrt(1/abar_t), sqrt(1/abar_t - 1) in both steps' layouts."""
    x = x_t.float()
    eps, var_values = _guided_eps(model_out, x.shape[1], len(x), guidance_scale)
    k = coefs.reshape(len(coefs), *([1] * x.dim()))
    pred_xstart = k[0] * x - k[1] * eps
    if clip_denoised:
        pred_xstart = pred_xstart.clamp(-1, 1)
    return x, eps, var_values, k, pred_xstart


def _ancestral_torch(model_out, x_t, noise, coefs, guidance_scale, clip_denoised) -> torch.Tensor:
    x, _, var_values, k, pred_xstart = _predict_x0(model_out, x_t, coefs, guidance_scale, clip_denoised)
    mean = k[2] * pred_xstart + k[3] * x
    if noise is None:
        return mean.to(x_t.dtype)
    frac = (var_values + 1) / 2
    log_var = frac * k[5] + (1 - frac) * k[4]
    return (mean + k[6] * torch.exp(0.5 * log_var) * noise.float()).to(x_t.dtype)


def _ddim_torch(model_out, x_t, noise, coefs, guidance_scale, clip_denoised) -> torch.Tensor:
    x, _, _, k, pred_xstart = _predict_x0(model_out, x_t, coefs, guidance_scale, clip_denoised)
    eps = (k[0] * x - pred_xstart) / k[1]
    mean_pred = pred_xstart * k[2] + k[3] * eps
    if noise is None:
        return mean_pred.to(x_t.dtype)
    return (mean_pred + k[4] * noise.float()).to(x_t.dtype)


class StepOptions(TypedDict, total=False):
    """The keyword arguments of both steps: ``guidance_scale`` (float, 0-d tensor or ``None``, the default:
    no guidance), ``clip_denoised`` (default True), ``backend`` (default ``"auto"``) and ``out`` (default
    ``None``: a new tensor; may be ``x_t``)."""

    guidance_scale: float | torch.Tensor | None
    clip_denoised: bool
    backend: str
    out: torch.Tensor | None


def _step(
    model_out, x_t, noise, coefs, *, ddim: bool, guidance_scale=None, clip_denoised=True, backend="auto", out=None
):
    name = "ddim_step" if ddim else "guided_ancestral_step"
    if isinstance(coefs, AncestralCoefs | DDIMCoefs):
        if isinstance(coefs, AncestralCoefs) == ddim:
            raise TypeError(f"{name}: got {type(coefs).__name__}")
        coefs = coefs.pack(x_t.device)
    if isinstance(guidance_scale, int | float) and not math.isfinite(guidance_scale):
        raise ValueError(f"{name}: guidance_scale must be finite")
    _check(model_out, x_t, noise, coefs, guidance_scale, out, ddim=ddim, name=name)
    auto = SAMPLER.requested(backend)[0] == "auto"
    tensors = [model_out, x_t, noise, coefs, out, guidance_scale if isinstance(guidance_scale, torch.Tensor) else None]

    def triton_reason() -> str | None:
        if any(t is not None and not t.is_contiguous() for t in tensors):
            return "an input is not contiguous"
        if any(t is not None and t.dtype not in (torch.float32, torch.float16, torch.bfloat16) for t in tensors):
            return "dtype not fp32/fp16/bf16"
        if x_t.numel() == 0:
            return "empty input"
        if (r := grad_reason(*tensors)) is not None:
            return r
        return _triton.device_problem(*tensors, auto=auto)

    backend_name = resolve(SAMPLER, backend, {"triton": triton_reason, "torch": lambda: None})
    if backend_name == "triton":
        from synthdata.kernels._triton_sampler import sampler_step_triton

        return sampler_step_triton(
            model_out, x_t, noise, coefs, guidance_scale, clip_denoised, ddim, torch.empty_like(x_t) if out is None else out
        )
    fn = _ddim_torch if ddim else _ancestral_torch
    result = fn(model_out, x_t, noise, coefs, guidance_scale, clip_denoised)
    return result if out is None else out.copy_(result)


def guided_ancestral_step(
    model_out: torch.Tensor, x_t: torch.Tensor, noise: torch.Tensor | None, coefs: torch.Tensor | AncestralCoefs,
    **options: Unpack[StepOptions],
) -> torch.Tensor:
    """One ancestral step ``x_t -> x_{t-1}`` with learned-range variance (see the module docstring).

    ``model_out``: ``(rows, 2C, ...)``; ``x_t``, ``noise``: ``(rows', C, ...)`` (``noise=None``: no noise
    term); ``coefs``: the (7,) fp32 vector of step ``t`` (``SamplerTables.row(tables.ancestral, t)``)
    or an :class:`AncestralCoefs`; ``options``: :class:`StepOptions` (``guidance_scale``, ``clip_denoised``,
    ``backend``, ``out``). Returns ``x_{t-1}`` in ``x_t.dtype`` (computed in fp32).
    """
    return _step(model_out, x_t, noise, coefs, ddim=False, **options)


def ddim_step(
    model_out: torch.Tensor, x_t: torch.Tensor, noise: torch.Tensor | None, coefs: torch.Tensor | DDIMCoefs,
    **options: Unpack[StepOptions],
) -> torch.Tensor:
    """One DDIM step ``x_t -> x_{t-1}`` (see the module docstring); the variance channels are ignored.

    ``model_out``: ``(rows, C or 2C, ...)``; ``coefs``: the (5,) fp32 vector of step ``t``
    (``SamplerTables.row(tables.ddim(eta), t)``) or a :class:`DDIMCoefs`; ``noise=None`` when eta is 0
    (or to drop the noise term). ``options`` as :func:`guided_ancestral_step`.
    """
    return _step(model_out, x_t, noise, coefs, ddim=True, **options)
