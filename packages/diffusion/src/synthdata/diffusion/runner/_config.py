"""The generation settings: paper defaults, with smaller ones for ``smoke`` runs of tiny random models."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from synthdata.diffusion.runner.errors import GenerateError

PAPER_BASE_RESPACING = "100"
PAPER_UP_RESPACING = "fast27"
# Tiny random models make noise whatever the step count; few steps keep a CPU smoke run to seconds.
SMOKE_BASE_RESPACING = "3"
SMOKE_UP_RESPACING = "ddim2"
DEFAULT_SHARD_SIZE = {64: 1000, 256: 250}  # ~10 MB resp. ~40 MB of PNG per shard
DTYPES = ("float32", "float16", "bfloat16")
SAMPLERS = ("auto", "exact", "fast")  # auto: fast on CUDA, exact elsewhere


@dataclass(kw_only=True, slots=True)
class GenerateConfig:
    """Everything ``synth-generate`` takes. ``None`` means "the default for this run" (see :meth:`resolved`)."""

    out: str
    images_per_prompt: int = 1
    size: int = 64
    guidance: float = 3.0
    base_respacing: str | None = None
    up_respacing: str | None = None
    upsample_temp: float = 0.997
    batch_size: int = 32
    image_format: str = "png"
    quality: int | None = None
    seed: int = 0
    shard_size: int | None = None
    prefix: str = "gen"
    name: str = ""
    smoke: bool = False
    real_guidance: str | None = None
    shots: int | None = None
    device: str | None = None
    dtype: str | None = None
    sampler: str = "auto"
    cache_dir: str | None = None
    base_checkpoint: str = "glide.base"
    upsample_checkpoint: str = "glide.upsample"
    download: bool = True

    def resolved(self) -> GenerateConfig:
        """A checked copy with every default filled in."""
        c = dataclasses.replace(self)
        if c.size not in (64, 256):
            raise GenerateError(f"--size must be 64 or 256, got {c.size}")
        if c.base_respacing is None:
            c.base_respacing = SMOKE_BASE_RESPACING if c.smoke else PAPER_BASE_RESPACING
        if c.up_respacing is None:
            c.up_respacing = SMOKE_UP_RESPACING if c.smoke else PAPER_UP_RESPACING
        if c.shard_size is None:
            c.shard_size = DEFAULT_SHARD_SIZE[c.size]
        c.image_format = {"jpeg": "jpg"}.get(c.image_format.lower(), c.image_format.lower())
        if c.image_format not in ("png", "jpg", "webp"):
            raise GenerateError(f"--format must be png, jpg or webp, got {self.image_format!r}")
        if c.quality is not None and not 1 <= c.quality <= 100:
            raise GenerateError(f"--quality must be in 1..100, got {c.quality}")
        for flag, value, low in (
            ("--images-per-prompt", c.images_per_prompt, 1),
            ("--batch-size", c.batch_size, 1),
            ("--shard-size", c.shard_size, 1),
        ):
            if value < low:
                raise GenerateError(f"{flag} must be >= {low}, got {value}")
        if c.guidance < 0:
            raise GenerateError(f"--guidance must be >= 0, got {c.guidance}")
        if not 0 < c.upsample_temp <= 2:
            raise GenerateError(f"--upsample-temp must be in (0, 2], got {c.upsample_temp}")
        if (c.real_guidance is None) != (c.shots is None):
            raise GenerateError("--real-guidance DIR and --shots K go together; give both or neither")
        if c.shots is not None and c.shots < 1:
            raise GenerateError(f"--shots must be >= 1, got {c.shots}")
        if c.sampler not in SAMPLERS:
            raise GenerateError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {c.sampler!r}")
        if c.dtype is not None and c.dtype not in DTYPES:
            raise GenerateError(f"--dtype must be one of {', '.join(DTYPES)}, got {c.dtype!r}")
        if "://" in c.out:
            raise GenerateError(
                f"--out {c.out}: only local directories are supported (resume needs atomic renames); "
                "write to a local or mounted path and copy the shards afterwards"
            )
        return c

    def image_settings(self) -> dict[str, Any]:
        """The settings that change the images (and so must not change across a resumed run)."""
        s: dict[str, Any] = {
            "seed": self.seed,
            "size": self.size,
            "guidance": self.guidance,
            "base_respacing": self.base_respacing,
            "image_format": self.image_format,
            "quality": self.quality,
            "shard_size": self.shard_size,
            "prefix": self.prefix,
            "smoke": self.smoke,
            "shots": self.shots,
        }
        if self.size == 256:
            s |= {"up_respacing": self.up_respacing, "upsample_temp": self.upsample_temp}
        return s

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
