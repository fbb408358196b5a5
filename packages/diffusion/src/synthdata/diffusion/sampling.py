"""Exact GLIDE samplers: model functions (with classifier-free guidance), one denoising step, the loops,
explicit noise sources and Real Guidance.

The boundary for fast paths is two functions:

- a **model function** ``model_fn(x, t) -> out``: ``x`` (B, 3, H, W) float32, ``t`` int64 (B,) *original*
  timesteps; ``out`` (B, 6, H, W) float32 = eps (guided if applicable) and the variance values.
  :func:`model_fn_for` builds the exact one; a CUDA-graph/fp16 engineer can replace it.
- :func:`denoise_step` ``(diffusion, model_fn, x, i, noise, *, method, clip_denoised, eta)``: one respaced step
  ``i`` (from ``num_timesteps-1`` down to 0), given the step's noise (``None`` where unused).

Noise is always explicit: a :class:`NoiseSource` gives the initial noise and the noise of the n-th step.
:class:`GeneratorNoise` draws every sample's noise from that sample's own CPU ``torch.Generator``, so a sample's
result depends on its seed, never on the batch it is in or the device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from synthdata.diffusion.model import Text2ImUNet, TextEmbedding
from synthdata.diffusion.schedule import GaussianDiffusion

__all__ = [
    "REAL_GUIDANCE_STEPS",
    "GeneratorNoise",
    "ModelFn",
    "NoiseSource",
    "StepOutput",
    "TensorNoise",
    "denoise_step",
    "model_fn_for",
    "real_guidance_sample",
    "real_guidance_start_step",
    "sample_loop",
]

ModelFn = Callable[[Tensor, Tensor], Tensor]
Method = Literal["ancestral", "ddim"]

#: Real Guidance: denoising steps k (out of 100 respaced steps) by number of real shots, from the paper.
REAL_GUIDANCE_STEPS: Mapping[int, int] = {16: 15, 8: 20, 4: 35, 2: 40, 1: 50}


# ------------------------------------------------------------------------------------------ model fns
def model_fn_for(
    model: Text2ImUNet,
    text_emb: TextEmbedding | None,
    *,
    guidance_scale: float | None = None,
    **inputs: Tensor,
) -> ModelFn:
    """The exact model function for ``model`` with a precomputed text embedding (computed once per batch).

    Without guidance ``text_emb`` has B rows (or 1, broadcast). With ``guidance_scale`` it has 2B rows:
    the conditional rows then the unconditional (empty prompt) rows; the model runs on the doubled batch
    ``[x, x]`` and returns ``uncond + s·(cond − uncond)`` for eps and the *conditional* variance values.
    ``inputs`` (e.g. ``low_res``) have B rows and are doubled with ``x``.
    """

    if guidance_scale is None:

        def plain(x: Tensor, t: Tensor) -> Tensor:
            return model(x, t, text_emb=text_emb, **inputs).float()

        return plain

    scale = float(guidance_scale)
    doubled = {k: torch.cat([v, v]) for k, v in inputs.items()}

    def guided(x: Tensor, t: Tensor) -> Tensor:
        b, c = x.shape[:2]
        out = model(torch.cat([x, x]), torch.cat([t, t]), text_emb=text_emb, **doubled).float()
        eps, rest = out[:, :c], out[:, c:]
        cond_eps, uncond_eps = eps[:b], eps[b:]
        guided_eps = uncond_eps + scale * (cond_eps - uncond_eps)
        return torch.cat([guided_eps, rest[:b]], dim=1)

    return guided


# ------------------------------------------------------------------------------------------ one step
@dataclass
class StepOutput:
    sample: Tensor
    pred_xstart: Tensor


def _prediction(
    diffusion: GaussianDiffusion, out: Tensor, x: Tensor, i: int, clip_denoised: bool
) -> tuple[Tensor, Tensor]:
    """(pred_xstart, log_variance) from the model output at respaced step ``i``."""
    c = x.shape[1]
    eps, var_values = out[:, :c], out[:, c:]
    log_variance = diffusion.learned_log_variance(var_values, i)
    pred_xstart = diffusion.predict_xstart(x, i, eps)
    if clip_denoised:
        pred_xstart = pred_xstart.clamp(-1, 1)
    return pred_xstart, log_variance


def denoise_step(
    diffusion: GaussianDiffusion,
    model_fn: ModelFn,
    x: Tensor,
    i: int,
    noise: Tensor | None,
    *,
    method: Method = "ancestral",
    clip_denoised: bool = True,
    eta: float = 0.0,
) -> StepOutput:
    """One step from respaced step ``i`` to ``i-1`` (to x0 at ``i == 0``).

    ``ancestral``: ``mean + exp(½·logvar)·noise`` with the learned-range variance. ``ddim``: the DDIM update
    with ``σ = eta·sqrt((1-ᾱ')/(1-ᾱ))·sqrt(1-ᾱ/ᾱ')``. ``noise`` is only used where it is multiplied by a
    non-zero factor (ancestral ``i > 0``, ddim ``eta > 0`` and ``i > 0``) and may be ``None`` otherwise.
    """
    t = diffusion.model_timesteps(i, x.shape[0], x.device)
    out = model_fn(x, t)
    pred_xstart, log_variance = _prediction(diffusion, out, x, i, clip_denoised)
    if method == "ancestral":
        mean = diffusion.posterior_mean(pred_xstart, x, i)
        if i == 0:
            return StepOutput(mean, pred_xstart)
        if noise is None:
            raise ValueError(f"ancestral step {i} needs noise")
        return StepOutput(mean + torch.exp(0.5 * log_variance) * noise, pred_xstart)
    if method == "ddim":
        eps = diffusion.predict_eps(x, i, pred_xstart)
        alpha_bar = diffusion.coef(diffusion.alphas_cumprod, i, x)
        alpha_bar_prev = diffusion.coef(diffusion.alphas_cumprod_prev, i, x)
        sigma = eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
        mean_pred = pred_xstart * torch.sqrt(alpha_bar_prev) + torch.sqrt(1 - alpha_bar_prev - sigma**2) * eps
        if i == 0 or eta == 0:
            return StepOutput(mean_pred, pred_xstart)
        if noise is None:
            raise ValueError(f"ddim step {i} with eta={eta} needs noise")
        return StepOutput(mean_pred + sigma * noise, pred_xstart)
    raise ValueError(f"unknown sampling method {method!r}; use 'ancestral' or 'ddim'")


def needs_step_noise(method: Method, eta: float, i: int) -> bool:
    """Whether step ``i`` of ``method`` consumes noise (drawn from the noise source)."""
    return i > 0 and (method == "ancestral" or eta != 0)


# ------------------------------------------------------------------------------------------ noise
class NoiseSource(Protocol):
    """Where a loop's randomness comes from: ``initial`` once, then ``step(n, ...)`` for the n-th step that
    uses noise (n counts the loop's steps from 0, in the order they run)."""

    def initial(self, shape: Sequence[int], device: torch.device | str) -> Tensor: ...

    def step(self, n: int, shape: Sequence[int], device: torch.device | str) -> Tensor: ...


class TensorNoise:
    """Replays given tensors: ``initial`` (B, ...) and ``steps`` (N, B, ...) where ``steps[n]`` is the n-th
    step's noise (the reference format)."""

    def __init__(self, initial: Tensor | None = None, steps: Tensor | Sequence[Tensor] | None = None):
        self._initial = initial
        self._steps = steps

    def initial(self, shape: Sequence[int], device: torch.device | str) -> Tensor:
        if self._initial is None:
            raise ValueError("no initial noise given")
        return self._check(self._initial, shape).to(device)

    def step(self, n: int, shape: Sequence[int], device: torch.device | str) -> Tensor:
        if self._steps is None or n >= len(self._steps):
            raise ValueError(f"no noise given for step {n}")
        return self._check(self._steps[n], shape).to(device)

    @staticmethod
    def _check(t: Tensor, shape: Sequence[int]) -> Tensor:
        if tuple(t.shape) != tuple(shape):
            raise ValueError(f"noise has shape {tuple(t.shape)}, expected {tuple(shape)}")
        return t.float()


class GeneratorNoise:
    """Per-sample CPU generators: row b's noise is drawn from ``generators[b]`` alone (float32 normal), so it
    depends only on that sample's seed and on how many draws came before for that sample."""

    def __init__(self, generators: Sequence[torch.Generator]):
        self.generators = list(generators)

    @classmethod
    def from_seeds(cls, seeds: Sequence[int]) -> GeneratorNoise:
        return cls([torch.Generator().manual_seed(int(s)) for s in seeds])

    def subset(self, rows: Sequence[int]) -> GeneratorNoise:
        return GeneratorNoise([self.generators[r] for r in rows])

    def _draw(self, shape: Sequence[int], device: torch.device | str) -> Tensor:
        if shape[0] != len(self.generators):
            raise ValueError(f"batch {shape[0]} but {len(self.generators)} generators")
        rows = [torch.randn(tuple(shape[1:]), generator=g, dtype=torch.float32) for g in self.generators]
        return torch.stack(rows).to(device)

    def initial(self, shape: Sequence[int], device: torch.device | str) -> Tensor:
        return self._draw(shape, device)

    def step(self, n: int, shape: Sequence[int], device: torch.device | str) -> Tensor:
        return self._draw(shape, device)


# ------------------------------------------------------------------------------------------ loops
def sample_loop(
    diffusion: GaussianDiffusion,
    model_fn: ModelFn,
    x: Tensor,
    *,
    noise: NoiseSource | None = None,
    method: Method = "ancestral",
    eta: float = 0.0,
    clip_denoised: bool = True,
    start: int | None = None,
    progress: bool = False,
    callback: Callable[[int, StepOutput], None] | None = None,
) -> Tensor:
    """Denoise ``x`` (the sample at respaced step ``start``, default the last) down to x0.

    Step noise is taken from ``noise`` for every step that uses it, in order. ``callback(i, out)`` runs after
    each step.
    """
    start = diffusion.num_timesteps - 1 if start is None else int(start)
    if not 0 <= start < diffusion.num_timesteps:
        raise ValueError(f"start step {start} outside 0..{diffusion.num_timesteps - 1}")
    indices: Sequence[int] = range(start, -1, -1)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc=f"{method} {diffusion.name}".strip(), leave=False)
    x = x.float()
    with torch.no_grad():
        for n, i in enumerate(indices):
            step_noise = None
            if needs_step_noise(method, eta, i):
                if noise is None:
                    raise ValueError(f"{method} sampling needs a noise source")
                step_noise = noise.step(n, x.shape, x.device)
            out = denoise_step(
                diffusion, model_fn, x, i, step_noise, method=method, clip_denoised=clip_denoised, eta=eta
            )
            x = out.sample
            if callback is not None:
                callback(i, out)
    return x


# ------------------------------------------------------------------------------------------ real guidance
def real_guidance_start_step(shots: int, table: Mapping[int, int] | None = None) -> int:
    """k, the number of denoising steps (of 100 respaced steps) for ``shots`` real images per class.

    The paper's table is ``{16: 15, 8: 20, 4: 35, 2: 40, 1: 50}``; other shot counts take the entry of the
    largest listed count not above them. Pass ``table`` to override.
    """
    table = REAL_GUIDANCE_STEPS if table is None else table
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    eligible = [s for s in table if s <= shots]
    if not eligible:
        raise ValueError(f"no real-guidance entry for {shots} shots in {dict(table)}")
    return int(table[max(eligible)])


def real_guidance_sample(
    diffusion: GaussianDiffusion,
    model_fn: ModelFn,
    ref_image: Tensor,
    k: int,
    *,
    noise: NoiseSource,
    batch: int | None = None,
    **kwargs: Any,
) -> Tensor:
    """Real Guidance: noise ``ref_image`` (in [-1, 1], broadcast to ``batch`` rows) to respaced step ``k-1``
    with ``noise.initial``, then run the ``k`` remaining ancestral steps (``kwargs`` as :func:`sample_loop`)."""
    if not 1 <= k <= diffusion.num_timesteps:
        raise ValueError(f"k={k} outside 1..{diffusion.num_timesteps}")
    batch = ref_image.shape[0] if batch is None else batch
    ref = ref_image.float().expand(batch, *ref_image.shape[1:])
    x = diffusion.q_sample(ref, k - 1, noise.initial(ref.shape, ref.device))
    return sample_loop(diffusion, model_fn, x, noise=noise, start=k - 1, **kwargs)
