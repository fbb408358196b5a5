"""Adapter: a ``GlidePipeline``'s models sampled with :class:`synthdata.diffusion.fast.FastSampler`.

``GlidePipeline.generate`` runs the exact loop. This wrapper keeps its contract (same seeds, same noise
draws, same Real Guidance and upsampler rules, uint8 output) but runs each loop through the fixed-batch fused
sampler: CUDA graphs and fused kernels on a GPU, the same step run eagerly on the CPU. Every sample still
depends only on its seed, so exact and fast runs agree to float rounding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor

from synthdata.diffusion.fast import FastOptions, FastSampler, accelerate
from synthdata.diffusion.pipeline import GlidePipeline, _as_image, quantize_8bit, to_uint8
from synthdata.diffusion.sampling import GeneratorNoise
from synthdata.shards import item_seed

log = logging.getLogger(__name__)


class FastGlide:
    """``generate`` / ``describe`` / ``model_digests`` / ``diffusion`` of ``pipe``, sampled with FastSampler.

    ``batch_size`` is the largest batch; each distinct batch size gets its own fixed-shape sampler (and, on
    CUDA, its own captured graph), so no rows are wasted on padding.
    The models are prepared in place with :func:`accelerate` (kernels where eligible, PyTorch elsewhere).
    """

    def __init__(
        self,
        pipe: GlidePipeline,
        *,
        batch_size: int,
        options: FastOptions | None = None,
        attention: str = "auto",
        norm: str = "auto",
    ) -> None:
        self.pipe = pipe
        self.batch_size = int(batch_size)
        self.options = options or FastOptions()
        half = pipe.dtype != torch.float32
        cl = self.options.channels_last
        self.channels_last = (pipe.device.type == "cuda" and half) if cl is None else cl
        self._digests = pipe.model_digests()  # before any change to the models
        for model in (pipe.base, pipe.upsampler):
            if model is not None:
                accelerate(model, attention=attention, norm=norm, channels_last=self.channels_last)
        self._samplers: dict[tuple[Any, ...], FastSampler] = {}
        self._attention, self._norm = attention, norm

    def _sampler(
        self, role: str, respacing: str, guidance: float | None, method: str, rows: int
    ) -> FastSampler:
        # One sampler per row count: a short batch (a shard's last) gets its own step rather than being
        # padded to the full batch; a run sees at most three row counts (full, shard rest, last shard rest).
        rows = min(rows, self.batch_size)
        key = (role, respacing, guidance, method, rows)
        if key not in self._samplers:
            model = self.pipe.base if role == "base" else self.pipe.upsampler
            assert model is not None
            self._samplers[key] = FastSampler(
                model,
                self.pipe.diffusion(role, respacing),
                batch_size=rows,
                guidance_scale=guidance,
                method=method,  # type: ignore[arg-type]
                eta=0.0,
                options=FastOptions(**(asdict(self.options) | {"channels_last": self.channels_last})),
            )
        return self._samplers[key]

    @torch.no_grad()
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
    ) -> Tensor:
        """As :meth:`GlidePipeline.generate`; with Real Guidance every row needs a reference."""
        if size not in (64, 256):
            raise ValueError(f"size must be 64 or 256, got {size}")
        b, pipe = len(prompts), self.pipe
        if len(seeds) != b:
            raise ValueError(f"{b} prompts but {len(seeds)} seeds")
        dev, base = pipe.device, pipe.base
        s = base.options.image_size
        tokens, mask = pipe.tokenizer.batch(prompts, base.text_ctx, device=dev)
        text = base.encode_text(tokens, mask).cat(base.empty_text_embedding().expand(b))
        if b > self.batch_size:
            raise ValueError(f"{b} rows for a fast sampler of batch_size {self.batch_size}")
        sampler = self._sampler("base", base_respacing, float(guidance_scale), "ancestral", b)
        noise = GeneratorNoise.from_seeds(seeds)
        refs = list(real_guidance) if real_guidance is not None else []
        if any(r is not None for r in refs):
            if len(refs) != b or any(r is None for r in refs) or start_step is None:
                raise ValueError(
                    "the fast sampler takes Real Guidance for every row of a batch, with start_step"
                )
            ref = torch.stack([_as_image(r, s) for r in refs]).to(dev)  # type: ignore[arg-type]
            k = int(start_step)
            x = pipe.diffusion("base", base_respacing).q_sample(ref, k - 1, noise.initial(ref.shape, dev))
            out = sampler(x, text, noise=noise, start=k - 1)
        else:
            out = sampler(noise.initial((b, 3, s, s), dev), text, noise=noise)
        if size == 256:
            up = pipe.upsampler
            if up is None:
                raise ValueError("this pipeline has no upsampler; build it with upsample=True")
            tokens, mask = pipe.tokenizer.batch(prompts, up.text_ctx, device=dev)
            up_noise = GeneratorNoise.from_seeds(
                [item_seed(int(x), "upsample", stream="glide") for x in seeds]
            )
            us = up.options.image_size
            x = up_noise.initial((b, 3, us, us), dev) * upsample_temp
            sampler = self._sampler("upsample", up_respacing, None, "ddim", b)
            out = sampler(x, up.encode_text(tokens, mask), noise=up_noise, low_res=quantize_8bit(out).to(dev))
        return to_uint8(out)

    def describe(self) -> dict[str, Any]:
        return self.pipe.describe() | {
            "digests": self._digests,
            "sampler": "fast",
            "fast": asdict(self.options)
            | {"channels_last": self.channels_last, "attention": self._attention, "norm": self._norm},
        }

    def model_digests(self) -> dict[str, str]:
        return dict(self._digests)

    def diffusion(self, role: str, respacing: str) -> Any:
        return self.pipe.diffusion(role, respacing)
