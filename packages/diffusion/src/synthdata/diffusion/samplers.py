"""The sampler strategy of :class:`~synthdata.diffusion.pipeline.GlidePipeline`: one signature for every sampler.

The pipeline owns the models, the tokenizer, the schedules, the seeds and the generate / generate_base /
upsample flow; a sampler only runs the denoising loop of one stage. Every sampler is called the same way::

    sampler(stage, x, text, noise=..., start=None, progress=False, **inputs) -> x0 (float32)

- ``stage``: a :class:`Stage`, GLIDE's eps model wrapped once: the model, its respaced diffusion, the
  guidance scale (``None``: no guidance), the method (``"ancestral"`` / ``"ddim"``), eta and clipping;
- ``x``: the n rows at respaced step ``start`` (default the last step), float32 (n, C, H, W);
- ``text``: the text embedding, ``[cond (n); uncond (n)]`` with guidance, n rows without;
- ``noise``: the :class:`~synthdata.diffusion.sampling.NoiseSource` of the n rows (step noise is drawn
  exactly when :func:`~synthdata.diffusion.sampling.sample_loop` draws it);
- ``inputs``: extra model inputs with n rows (the upsampler's ``low_res``).

Every sampler subclasses :class:`Sampler` and implements :meth:`Sampler.sample` (the call's work); it also
says how it takes rows (:meth:`Sampler.chunks`: the exact one all at once, the fast one in chunks of its
fixed batch), prepares each model once when the pipeline is built (:meth:`Sampler.prepare`) and
describes itself for run records (:meth:`Sampler.describe`).

:class:`ExactSampler` is the reference loop (:func:`~synthdata.diffusion.sampling.sample_loop`);
:class:`synthdata.diffusion.fast.FastSampling` is the fast one (fixed batch, fused kernels, CUDA graphs).
:func:`create_sampler` turns ``"exact"`` / ``"fast"`` (or a sampler object) into one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from synthdata.diffusion.model import Text2ImUNet, TextEmbedding
from synthdata.diffusion.sampling import Method, ModelFn, NoiseSource, model_fn_for, sample_loop
from synthdata.diffusion.schedule import GaussianDiffusion

__all__ = ["SAMPLER_NAMES", "ExactSampler", "Sampler", "Stage", "create_sampler"]

SAMPLER_NAMES = ("exact", "fast")


@dataclass(frozen=True, eq=False)
class Stage:
    """One sampling stage of a pipeline (GLIDE's eps model wrapped once): ``role`` (``"base"`` /
    ``"upsample"``) and ``respacing`` name it; the rest says how it is sampled."""

    role: str
    respacing: str
    model: Text2ImUNet
    diffusion: GaussianDiffusion
    guidance_scale: float | None = None
    method: Method = "ancestral"
    eta: float = 0.0
    clip_denoised: bool = True

    @property
    def key(self) -> tuple[str, str, float | None, str]:
        """``(role, respacing, guidance_scale, method)``: what a sampler may keep per stage."""
        return (self.role, self.respacing, self.guidance_scale, self.method)

    def model_fn(self, text: TextEmbedding, **inputs: Tensor) -> ModelFn:
        """The exact model function of this stage for one batch's text (and inputs)."""
        return model_fn_for(self.model, text, guidance_scale=self.guidance_scale, **inputs)


class Sampler:
    """The base of every sampler. ``__call__`` is the one signature (see the module); a sampler implements
    :meth:`sample` and, where it needs to, :meth:`prepare`, :meth:`chunks` and :meth:`describe`."""

    name = "sampler"

    def prepare(self, model: Text2ImUNet) -> Text2ImUNet:
        """Make a model (on its device, in its dtype) ready for this sampler; called once per model when the
        pipeline is built. The default leaves it as it is."""
        return model

    def chunks(self, n: int) -> list[slice]:
        """How ``n`` rows are split into sampler calls; the default: all in one."""
        return [slice(0, n)]

    def describe(self) -> dict[str, Any]:
        """What a run record adds to the pipeline's description; the default: nothing."""
        return {}

    def __call__(
        self,
        stage: Stage,
        x: Tensor,
        text: TextEmbedding,
        *,
        noise: NoiseSource | None = None,
        start: int | None = None,
        progress: bool = False,
        **inputs: Tensor,
    ) -> Tensor:
        """Denoise the n rows ``x`` of ``stage`` from respaced step ``start`` (default the last) to x0."""
        return self.sample(stage, x, text, noise, start, progress, inputs)

    def sample(self, stage: Stage, x: Tensor, text: TextEmbedding, noise: NoiseSource | None, start: int | None,
               progress: bool, inputs: Mapping[str, Tensor]) -> Tensor:  # fmt: skip
        """:meth:`__call__`'s work, its arguments in order."""
        raise NotImplementedError


class ExactSampler(Sampler):
    """The reference loop: :func:`~synthdata.diffusion.sampling.sample_loop` over the stage's exact model
    function, all rows in one call, the models as the pipeline built them."""

    name = "exact"

    def sample(self, stage: Stage, x: Tensor, text: TextEmbedding, noise: NoiseSource | None, start: int | None,
               progress: bool, inputs: Mapping[str, Tensor]) -> Tensor:  # fmt: skip
        return sample_loop(
            stage.diffusion, stage.model_fn(text, **inputs), x, noise=noise, method=stage.method, eta=stage.eta,
            clip_denoised=stage.clip_denoised, start=start, progress=progress,
        )  # fmt: skip


def create_sampler(sampler: str | Sampler) -> Sampler:
    """``"exact"`` → :class:`ExactSampler`; ``"fast"`` →
    :class:`~synthdata.diffusion.fast.FastSampling` (its batch fixed by the first call); an object is kept."""
    if not isinstance(sampler, str):
        return sampler
    if sampler == "exact":
        return ExactSampler()
    if sampler == "fast":
        from synthdata.diffusion.fast import FastSampling

        return FastSampling()
    raise ValueError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLER_NAMES)} or a sampler object")
