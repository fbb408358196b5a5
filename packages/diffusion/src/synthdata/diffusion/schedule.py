"""Noise schedules, timestep respacing and the (respaced) Gaussian diffusion of GLIDE.

All coefficients are computed in float64 (numpy) from the original schedule and indexed by the *respaced*
step index ``i`` (0 = least noisy); ``timestep_map[i]`` is the original timestep given to the model.
Coefficients are cast to float32 when applied to tensors, as in the official code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "GaussianDiffusion",
    "betas_for_alpha_bar",
    "create_diffusion",
    "named_beta_schedule",
    "space_timesteps",
]


def betas_for_alpha_bar(num_steps: int, alpha_bar, max_beta: float = 0.999) -> np.ndarray:
    betas = []
    for i in range(num_steps):
        t1, t2 = i / num_steps, (i + 1) / num_steps
        betas.append(min(1 - alpha_bar(t2) / alpha_bar(t1), max_beta))
    return np.array(betas, dtype=np.float64)


def named_beta_schedule(name: str, num_steps: int) -> np.ndarray:
    """``linear`` (scaled to ``num_steps``) or ``squaredcos_cap_v2`` (the cosine schedule), float64."""
    if name == "linear":
        scale = 1000 / num_steps
        return np.linspace(scale * 0.0001, scale * 0.02, num_steps, dtype=np.float64)
    if name == "squaredcos_cap_v2":
        return betas_for_alpha_bar(num_steps, lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2)
    raise ValueError(f"unknown noise schedule {name!r}; use 'linear' or 'squaredcos_cap_v2'")


def space_timesteps(num_steps: int, section_counts: str | Sequence[int]) -> list[int]:
    """The original timesteps kept by a respacing, sorted ascending.

    ``"100"`` / ``"10,10,3,2,2"``: that many evenly spaced steps in each equal section; ``"ddimN"``: a
    constant stride giving exactly N steps; ``"fast27"``: ``"10,10,3,2,2"`` with ``T-1`` replaced by ``T-3``;
    ``""``: every step.
    """
    if isinstance(section_counts, str):
        spec = section_counts.strip()
        if spec == "":
            return list(range(num_steps))
        if spec.startswith("ddim"):
            desired = int(spec[len("ddim") :])
            for stride in range(1, num_steps):
                if len(range(0, num_steps, stride)) == desired:
                    return list(range(0, num_steps, stride))
            raise ValueError(f"cannot create exactly {desired} steps with an integer stride from {num_steps}")
        if spec == "fast27":
            steps = set(space_timesteps(num_steps, "10,10,3,2,2"))
            steps.remove(num_steps - 1)
            steps.add(num_steps - 3)
            return sorted(steps)
        try:
            counts = [int(x) for x in spec.split(",")]
        except ValueError:
            raise ValueError(
                f"bad timestep respacing {section_counts!r}: use 'N', 'a,b,c', 'ddimN' or 'fast27'"
            ) from None
    else:
        counts = [int(x) for x in section_counts]
    size_per, extra = divmod(num_steps, len(counts))
    start = 0
    steps: list[int] = []
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(f"cannot divide a section of {size} steps into {count}")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        cur = 0.0
        for _ in range(count):
            steps.append(start + round(cur))
            cur += stride
        start += size
    return sorted(set(steps))


class GaussianDiffusion:
    """The respaced diffusion process with GLIDE's learned-range variance (eps prediction)."""

    def __init__(self, betas: np.ndarray, timestep_map: Sequence[int] | None = None, *, name: str = ""):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or not ((betas > 0) & (betas <= 1)).all():
            raise ValueError("betas must be a 1-D array in (0, 1]")
        self.name = name
        self.betas = betas
        self.num_timesteps = len(betas)
        self.timestep_map = list(range(len(betas))) if timestep_map is None else [int(t) for t in timestep_map]
        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        pv = self.posterior_variance
        with np.errstate(divide="ignore"):  # one-step respacing: the variance of the last step is 0 (unused)
            self.posterior_log_variance_clipped = np.log(np.append(pv[1], pv[1:]) if len(pv) > 1 else pv)
        self.log_betas = np.log(betas)
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)

    @classmethod
    def from_schedule(
        cls, noise_schedule: str, diffusion_steps: int = 1000, respacing: str | Sequence[int] = ""
    ) -> GaussianDiffusion:
        """The diffusion of ``noise_schedule`` over ``diffusion_steps`` respaced by ``respacing``."""
        base = named_beta_schedule(noise_schedule, diffusion_steps)
        use = space_timesteps(diffusion_steps, respacing)
        alphas_cumprod = np.cumprod(1.0 - base)
        last, new_betas = 1.0, []
        for t in use:
            new_betas.append(1 - alphas_cumprod[t] / last)
            last = alphas_cumprod[t]
        label = f"{noise_schedule}/{respacing if isinstance(respacing, str) else ','.join(map(str, respacing))}"
        return cls(np.array(new_betas), use, name=label)

    def __repr__(self) -> str:
        return f"GaussianDiffusion({self.name or 'custom'}, {self.num_timesteps} steps)"

    # --------------------------------------------------------------------------------------- helpers
    @staticmethod
    def coef(arr: np.ndarray, i: int, like: Tensor) -> Tensor:
        """``arr[i]`` as a float32 scalar tensor on ``like``'s device."""
        return torch.tensor(arr[i], dtype=torch.float64).float().to(like.device)

    def model_timesteps(self, i: int, batch: int, device: torch.device | str) -> Tensor:
        """Original timesteps (int64, shape (batch,)) given to the model at respaced step ``i``."""
        return torch.full((batch,), self.timestep_map[i], dtype=torch.long, device=device)

    # --------------------------------------------------------------------------------------- process
    def q_sample(self, x_start: Tensor, i: int, noise: Tensor) -> Tensor:
        """Noise ``x_start`` to respaced step ``i``: ``sqrt(ᾱ_i)·x0 + sqrt(1-ᾱ_i)·noise``."""
        return self.coef(self.sqrt_alphas_cumprod, i, x_start) * x_start + self.coef(
            self.sqrt_one_minus_alphas_cumprod, i, x_start
        ) * noise

    def predict_xstart(self, x: Tensor, i: int, eps: Tensor) -> Tensor:
        return self.coef(self.sqrt_recip_alphas_cumprod, i, x) * x - self.coef(
            self.sqrt_recipm1_alphas_cumprod, i, x
        ) * eps

    def predict_eps(self, x: Tensor, i: int, xstart: Tensor) -> Tensor:
        return (self.coef(self.sqrt_recip_alphas_cumprod, i, x) * x - xstart) / self.coef(
            self.sqrt_recipm1_alphas_cumprod, i, x
        )

    def posterior_mean(self, xstart: Tensor, x: Tensor, i: int) -> Tensor:
        return self.coef(self.posterior_mean_coef1, i, x) * xstart + self.coef(self.posterior_mean_coef2, i, x) * x

    def learned_log_variance(self, var_values: Tensor, i: int) -> Tensor:
        """Learned-range variance: interpolate between the clipped posterior and beta log-variances with
        ``frac = (v + 1) / 2``."""
        min_log = self.coef(self.posterior_log_variance_clipped, i, var_values)
        max_log = self.coef(self.log_betas, i, var_values)
        frac = (var_values + 1) / 2
        return frac * max_log + (1 - frac) * min_log


def create_diffusion(options, respacing: str | Sequence[int] | None = None) -> GaussianDiffusion:
    """The diffusion for a model's options (``noise_schedule``, ``diffusion_steps``), respaced by
    ``respacing`` or else by the options' ``timestep_respacing``."""
    from synthdata.diffusion.options import options_from

    o = options_from(options)
    return GaussianDiffusion.from_schedule(
        o.noise_schedule, o.diffusion_steps, o.timestep_respacing if respacing is None else respacing
    )
