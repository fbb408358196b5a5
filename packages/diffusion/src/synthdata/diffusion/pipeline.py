"""GlidePipeline: a batch of different prompts → 64 px (classifier-free guided, optional Real Guidance) →
256 px (DDIM upsampler), reproducible per sample from its seed.

Randomness: sample b draws all base-model noise from ``torch.Generator().manual_seed(seeds[b])`` (the initial
noise, or the q_sample noise for Real Guidance, then one draw per ancestral step) and all upsampler noise from
a second generator seeded with ``item_seed(seeds[b], "upsample", stream="glide")``. Noise is drawn on the CPU
in float32, so a sample's image does not depend on its batch or device (up to float rounding of the model).

The pipeline runs the flow once for every sampler; the denoising loop of each stage is its sampler's
(``sampler="exact"``, ``"fast"`` or a :class:`~synthdata.diffusion.samplers.Sampler`; see ``samplers.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from synthdata.diffusion.checkpoints import (
    file_sha256,
    load_checkpoint,
    resolve_checkpoint,
    state_dict_sha256,
)
from synthdata.diffusion.model import Text2ImUNet, TextEmbedding, create_model
from synthdata.diffusion.options import base_options, smoke_options, upsample_options
from synthdata.diffusion.samplers import Sampler, Stage, create_sampler
from synthdata.diffusion.sampling import GeneratorNoise
from synthdata.diffusion.schedule import GaussianDiffusion, create_diffusion
from synthdata.diffusion.tokenizer import Tokenizer, get_tokenizer
from synthdata.shards.seeding import item_seed

__all__ = ["GlidePipeline", "quantize_8bit", "smoke_model", "to_uint8"]

log = logging.getLogger(__name__)


def to_uint8(x: Tensor) -> Tensor:
    """(B, 3, H, W) in [-1, 1] → uint8 (B, H, W, 3) on the CPU."""
    return ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().contiguous()


def quantize_8bit(x: Tensor) -> Tensor:
    """The upsampler's low-res input: the base samples rounded to 8 bits, back in [-1, 1]."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def smoke_model(kind: str, *, seed: int = 0) -> Text2ImUNet:
    """A tiny random model of the real architecture (``smoke_options(kind)``). Its zero-initialised output
    layers are randomised too, so it produces (meaningless) non-constant images."""
    model = create_model(smoke_options(kind), seed=seed)  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return model


def _rows_by_start_step(
    b: int, seeds: Sequence[int], real_guidance: Sequence[Tensor | None] | None, start_step: int | None
) -> tuple[list[Tensor | None], dict[int | None, list[int]]]:
    """Check a ``generate_base`` batch of ``b`` prompts; return one reference
    per row (None: no Real Guidance) and the rows grouped by start step (None: from pure noise)."""
    if len(seeds) != b:
        raise ValueError(f"{b} prompts but {len(seeds)} seeds")
    refs = list(real_guidance) if real_guidance is not None else [None] * b
    if len(refs) != b:
        raise ValueError(f"{b} prompts but {len(refs)} real_guidance entries")
    if any(r is not None for r in refs) and start_step is None:
        raise ValueError("real_guidance needs start_step (k; e.g. real_guidance_start_step(shots))")
    groups: dict[int | None, list[int]] = {}
    for row, ref in enumerate(refs):
        groups.setdefault(None if ref is None else int(start_step), []).append(row)  # type: ignore[arg-type]
    return refs, groups


def _as_image(ref: Tensor, size: int) -> Tensor:
    """A reference image as (3, size, size) float in [-1, 1]: from uint8 (H, W, 3) or float (3, H, W)."""
    if ref.dtype == torch.uint8:
        if ref.ndim != 3 or ref.shape[-1] != 3:
            raise ValueError(f"uint8 reference images must be (H, W, 3), got {tuple(ref.shape)}")
        ref = ref.permute(2, 0, 1).float() / 127.5 - 1
    elif ref.ndim != 3 or ref.shape[0] != 3:
        raise ValueError(f"float reference images must be (3, H, W) in [-1, 1], got {tuple(ref.shape)}")
    ref = ref.float()
    if ref.shape[-2:] != (size, size):
        ref = F.interpolate(ref[None], (size, size), mode="bicubic", antialias=True, align_corners=False)[0]
    return ref.clamp(-1, 1)


def upsample_noise(seeds: Sequence[int]) -> GeneratorNoise:
    """The upsampler's noise for samples with these seeds: one generator each, seeded from the sample's seed
    through its own ``"upsample"`` stream (the pipeline and the sampling benchmark share this rule)."""
    return GeneratorNoise.from_seeds([item_seed(int(s), "upsample", stream="glide") for s in seeds])


class GlidePipeline:
    """Text → image with GLIDE's base model and (optionally) its upsampler.

    ``dtype`` float32 runs everything exactly; float16/bfloat16 (on a GPU) convert the blocks as the official
    ``convert_to_fp16`` does (the diffusion arithmetic stays float32). ``sampler``: ``"exact"`` (the reference
    loop), ``"fast"`` (:class:`~synthdata.diffusion.fast.FastSampling` with its batch fixed by the first
    call) or a sampler object, e.g. ``FastSampling(batch_size=32)``; it is the pipeline's for its life.

    The pipeline takes ownership of the models it is given: it moves them to ``device``, converts them to
    ``dtype`` and lets the sampler prepare them, all in place and once, here (the fast sampler swaps the
    attention and norm layers for kernel ones; parameters and state-dict keys stay). Model digests are
    taken before any of it. Give a second pipeline its own models (``copy.deepcopy``).
    """

    def __init__(
        self,
        base: Text2ImUNet,
        upsampler: Text2ImUNet | None = None,
        tokenizer: Tokenizer | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        checkpoint_files: dict[str, Path] | None = None,
        sampler: str | Sampler = "exact",
    ):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.sampler = create_sampler(sampler)
        self.tokenizer = tokenizer or get_tokenizer()
        self._files = dict(checkpoint_files or {})
        self._digests: dict[str, str] = {}
        for role, model in (("base", base), ("upsample", upsampler)):
            if model is not None and role not in self._files:
                self._digests[role] = state_dict_sha256(model)  # before any dtype conversion
        self.base = self._prepare(base)
        self.upsampler = self._prepare(upsampler) if upsampler is not None else None
        self._diffusions: dict[tuple[str, str], GaussianDiffusion] = {}
        self._stages: dict[tuple[str, str, float | None], Stage] = {}
        log.debug("GlidePipeline: %s sampler on %s (%s)", self.sampler.name, self.device, _dtype_name(dtype))

    def _prepare(self, model: Text2ImUNet) -> Text2ImUNet:
        model = model.to(self.device).eval()
        if self.dtype != torch.float32:
            model.convert_to_dtype(self.dtype)
        return self.sampler.prepare(model)

    # ------------------------------------------------------------------------------------ constructors
    @classmethod
    def smoke(
        cls,
        *,
        upsample: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
        sampler: str | Sampler = "exact",
    ) -> GlidePipeline:
        """Tiny random models of the real architectures (``--smoke``); the images are noise."""
        up = smoke_model("upsample", seed=seed + 1) if upsample else None
        return cls(smoke_model("base", seed=seed), up, device=device, dtype=dtype, sampler=sampler)

    @classmethod
    def pretrained(
        cls,
        *,
        upsample: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        base_checkpoint: str | os.PathLike[str] = "glide.base",
        upsample_checkpoint: str | os.PathLike[str] = "glide.upsample",
        download: bool = True,
        progress: bool = True,
        sampler: str | Sampler = "exact",
    ) -> GlidePipeline:
        """The official GLIDE weights (local paths, the cache, or downloaded). ``dtype`` defaults to float16
        on CUDA and float32 elsewhere; ``sampler`` as for the constructor."""
        device = torch.device(device) if device is not None else torch.device("cpu")
        if dtype is None:
            dtype = torch.float16 if device.type == "cuda" else torch.float32
        # find (or fetch) both files before building 800M parameters, so a missing one fails fast
        wanted = {"base": base_checkpoint, **({"upsample": upsample_checkpoint} if upsample else {})}
        files = {
            role: resolve_checkpoint(name, cache_dir, download_missing=download, progress=progress)
            for role, name in wanted.items()
        }
        base = create_model(base_options())
        load_checkpoint(base, files["base"])
        up = None
        if upsample:
            up = create_model(upsample_options())
            load_checkpoint(up, files["upsample"])
        return cls(base, up, device=device, dtype=dtype, checkpoint_files=files, sampler=sampler)

    # ------------------------------------------------------------------------------------ metadata
    def model_digests(self) -> dict[str, str]:
        """``{"base": sha256, "upsample": sha256}``: of the checkpoint file when loaded from one, else of the
        state dict (:func:`state_dict_sha256`), prefixed ``file:`` / ``state:``."""
        out: dict[str, str] = {}
        for role in ("base", "upsample"):
            if role in self._files:
                if role not in self._digests:
                    self._digests[role] = file_sha256(self._files[role])
                out[role] = "file:" + self._digests[role]
            elif role in self._digests:
                out[role] = "state:" + self._digests[role]
        return out

    def diffusion(self, role: str, respacing: str) -> GaussianDiffusion:
        """The (cached) respaced diffusion of the ``base`` or ``upsample`` model."""
        key = (role, respacing)
        if key not in self._diffusions:
            model = self.base if role == "base" else self.upsampler
            assert model is not None
            self._diffusions[key] = create_diffusion(model.options, respacing)
        return self._diffusions[key]

    # ------------------------------------------------------------------------------------ generation
    def _stage(self, role: str, respacing: str, guidance_scale: float | None = None) -> Stage:
        """The (cached) stage: the model of ``role`` wrapped once per respacing and guidance."""
        key = (role, respacing, guidance_scale)
        if key not in self._stages:
            model = self.base if role == "base" else self.upsampler
            assert model is not None
            method = "ancestral" if role == "base" else "ddim"
            self._stages[key] = Stage(role, respacing, model, self.diffusion(role, respacing), guidance_scale, method)
        return self._stages[key]

    def _text(self, model: Text2ImUNet, prompts: Sequence[str]) -> TextEmbedding:
        tokens, mask = self.tokenizer.batch(prompts, model.text_ctx, device=self.device)
        return model.encode_text(tokens, mask)

    @torch.no_grad()
    def generate_base(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        guidance_scale: float = 3.0,
        respacing: str = "100",
        real_guidance: Sequence[Tensor | None] | None = None,
        start_step: int | None = None,
        progress: bool = False,
    ) -> Tensor:
        """64 px samples (B, 3, 64, 64) float32 in [-1, 1] on the pipeline device.

        Rows with a ``real_guidance`` image start from it noised to respaced step ``start_step - 1`` and run
        ``start_step`` steps (Real Guidance); other rows start from pure noise. The text is encoded once per
        batch; the rows of one start step go to the sampler in its :meth:`~Sampler.chunks`.
        """
        b = len(prompts)
        refs, groups = _rows_by_start_step(b, seeds, real_guidance, start_step)
        stage = self._stage("base", respacing, float(guidance_scale))
        cond = self._text(stage.model, prompts)  # once per batch
        uncond = stage.model.empty_text_embedding()  # once per model
        noise = GeneratorNoise.from_seeds(seeds)
        size = stage.model.options.image_size
        out = torch.empty((b, 3, size, size), dtype=torch.float32, device=self.device)
        for k, rows in groups.items():
            if k is not None and not 1 <= k <= stage.diffusion.num_timesteps:
                raise ValueError(f"k={k} outside 1..{stage.diffusion.num_timesteps}")
            for chunk in self.sampler.chunks(len(rows)):
                idx = rows[chunk]
                text = cond.index(idx).cat(uncond.expand(len(idx)))
                ref = None if k is None else [refs[r] for r in idx]
                out[idx] = self._base_rows(stage, text, noise.subset(idx), k, ref, progress)  # type: ignore[arg-type]
        return out

    def _base_rows(
        self, stage: Stage, text: TextEmbedding, noise: GeneratorNoise, k: int | None, refs: list[Tensor] | None,
        progress: bool,
    ) -> Tensor:  # fmt: skip
        """One sampler call of ``generate_base``: from noise (``k`` None) or from ``refs`` noised to ``k - 1``."""
        size = stage.model.options.image_size
        if k is None or refs is None:
            x = noise.initial((len(noise.generators), 3, size, size), self.device)
            return self.sampler(stage, x, text, noise=noise, progress=progress)
        ref = torch.stack([_as_image(r, size) for r in refs]).to(self.device)
        x = stage.diffusion.q_sample(ref, k - 1, noise.initial(ref.shape, self.device))
        return self.sampler(stage, x, text, noise=noise, start=k - 1, progress=progress)

    @torch.no_grad()
    def upsample(
        self,
        low_res: Tensor,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        respacing: str = "fast27",
        temperature: float = 0.997,
        progress: bool = False,
    ) -> Tensor:
        """256 px samples (B, 3, 256, 256) float32 in [-1, 1]: DDIM (eta 0) from noise × ``temperature``,
        conditioned on ``low_res`` quantised to 8 bits and the prompts, no guidance."""
        if self.upsampler is None:
            raise ValueError("this pipeline has no upsampler; build it with upsample=True")
        n = len(prompts)
        if len(seeds) != n:
            raise ValueError(f"{n} prompts but {len(seeds)} seeds")
        stage = self._stage("upsample", respacing)
        size = stage.model.options.image_size
        text = self._text(stage.model, prompts)  # once per batch
        low = quantize_8bit(low_res).to(self.device)
        noise = upsample_noise(seeds)
        out = torch.empty((n, 3, size, size), dtype=torch.float32, device=self.device)
        for chunk in self.sampler.chunks(n):
            sub = noise.subset(range(n)[chunk])
            x = sub.initial((len(sub.generators), 3, size, size), self.device) * temperature
            out[chunk] = self.sampler(stage, x, text.index(chunk), noise=sub, progress=progress, low_res=low[chunk])
        return out

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        size: int = 64,
        guidance_scale: float = 3.0,
        base_respacing: str = "100",
        up_respacing: str = "fast27",
        upsample_temp: float = 0.997,
        real_guidance: Sequence[Tensor | None] | None = None,
        start_step: int | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Images for a batch of prompts as uint8 (B, H, W, 3) on the CPU; ``size`` 64 or 256."""
        if size not in (64, 256):
            raise ValueError(f"size must be 64 or 256, got {size}")
        if size == 256 and self.upsampler is None:  # before the base model's work, not after
            raise ValueError("this pipeline has no upsampler; build it with upsample=True")
        x = self.generate_base(
            prompts,
            seeds,
            guidance_scale=guidance_scale,
            respacing=base_respacing,
            real_guidance=real_guidance,
            start_step=start_step,
            progress=progress,
        )
        if size == 256:
            x = self.upsample(x, prompts, seeds, respacing=up_respacing, temperature=upsample_temp, progress=progress)
        return to_uint8(x)

    def describe(self) -> dict[str, Any]:
        """Metadata for a run record: options of both models, device, dtype and digests, plus what the
        sampler adds (the fast one: ``sampler: "fast"`` and its settings; the exact one nothing)."""
        return {
            "base_options": self.base.options.to_dict(),
            "upsample_options": self.upsampler.options.to_dict() if self.upsampler is not None else None,
            "device": str(self.device),
            "dtype": _dtype_name(self.dtype),
            "digests": self.model_digests(),
        } | self.sampler.describe()


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")
