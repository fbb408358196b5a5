"""The generation settings: paper defaults, with smaller ones for ``smoke`` runs of tiny random models."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from synthdata.diffusion.runner.errors import GenerateError
from synthdata.shards.options import option

PAPER_BASE_RESPACING = "100"
PAPER_UP_RESPACING = "fast27"
# Tiny random models make noise whatever the step count; few steps keep a CPU smoke run to seconds.
SMOKE_BASE_RESPACING = "3"
SMOKE_UP_RESPACING = "ddim2"
DEFAULT_SHARD_SIZE = {64: 1000, 256: 250}  # ~10 MB resp. ~40 MB of PNG per shard
DTYPES = ("float32", "float16", "bfloat16")
#: ``--precision`` names of the dtypes (the vocabulary of every command).
PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
SAMPLERS = ("auto", "exact", "fast")  # auto: fast on CUDA, exact elsewhere
#: How Real Guidance references become the pipeline's input (see ``_refs.py``): ``center-crop``, the centre
#: square (the pipeline then resizes it to 64 px); ``shorter-side-64``, the official code's
#: ``Resize(64, BICUBIC)``: shorter side to 64 px, no crop.
REFERENCE_PREPROCESSING = ("center-crop", "shorter-side-64")


#: Named settings over the defaults below (``default``): ``smoke`` for tiny random models on the CPU,
#: ``paper`` for the paper's 256 px images (base model, then the upsampler) and the official code's Real
#: Guidance references (shorter side resized to 64 px, not cropped).
RECIPES: dict[str, dict[str, Any]] = {
    "smoke": {"smoke": True},
    "paper": {"size": 256, "reference_preprocessing": "shorter-side-64"},
}


@dataclass(kw_only=True, slots=True)
class GenerateConfig:
    """Everything ``synth-generate`` takes. ``None`` means "the default for this run" (see :meth:`resolved`)."""

    out: str = option(help="output shard directory (created if missing) or s3:// / gs:// URL")
    images_per_prompt: int = option(1, help="images made per prompt (replicates)")
    size: int = option(64, help="64 (the base model) or 256 (base + upsampler)", choices=(64, 256))
    guidance: float = option(3.0, help="classifier-free guidance scale")
    base_respacing: str | None = option(
        None, help=f"base sampler steps (default {PAPER_BASE_RESPACING}; {SMOKE_BASE_RESPACING} with --smoke)"
    )
    up_respacing: str | None = option(
        None, help=f"upsampler DDIM steps (default {PAPER_UP_RESPACING}; {SMOKE_UP_RESPACING} with --smoke)"
    )
    upsample_temp: float = option(0.997, help="upsampler noise temperature")
    batch_size: int = option(32, help="images a model batch (prompts mixed)")
    image_format: str = option("png", help="image format", choices=("png", "jpg", "webp"))
    quality: int | None = option(None, help="jpg/webp quality 1-100 (default 95)")
    seed: int = option(0, help="global seed; each item's seed derives from it and the item's key")
    shard_size: int | None = option(None, help="images a shard (default 1000 at 64 px, 250 at 256 px)")
    prefix: str = option("gen", help="shard name prefix", cli=False)
    name: str = option("", help="data set name in dataset.json (default: the --out folder's name)")
    smoke: bool = option(False, help="tiny random models (no weights; images are noise)", cli=False)
    real_guidance: str | None = option(
        None, help="few-shot real images for Real Guidance: an ImageFolder (a folder per class)", concept="few_shot"
    )
    shots: int | None = option(None, help="reference images per class for Real Guidance (sets the start step)")
    reference_preprocessing: str = option(
        "center-crop",
        help="Real Guidance references: center-crop (the centre square, resized to 64 px) or shorter-side-64 "
        "(the official code: shorter side to 64 px, bicubic, no crop; a non-square result is then resized "
        "to 64x64, see docs/generate.md)",
        choices=REFERENCE_PREPROCESSING,
    )
    device: str | None = option(None, help="torch device (default auto: cuda:LOCAL_RANK when available, else cpu)")
    dtype: str | None = option(
        None,
        help="auto, fp32, fp16 or bf16 (default auto: fp16 on CUDA, fp32 on the CPU)",
        concept="precision",
        choices=("auto", "fp32", "fp16", "bf16"),
    )
    sampler: str = option(
        "auto", help="exact, fast (fixed batch, fused kernels, CUDA graphs) or auto (fast on CUDA)", choices=SAMPLERS
    )
    cache_dir: str | None = option(
        None, help="where GLIDE checkpoints are cached (default ~/.cache/synthdata)", concept="weights_cache"
    )
    base_checkpoint: str = option("glide.base", help="GLIDE base model: a file or a release name")
    upsample_checkpoint: str = option("glide.upsample", help="GLIDE upsampler: a file or a release name")
    download: bool = option(True, help="fail instead of downloading missing weights", negate=True)

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
        c.dtype = PRECISIONS.get(c.dtype, c.dtype) if c.dtype not in (None, "auto", "") else None
        c.device = c.device if c.device not in ("auto", "") else None
        _check(c, given_format=self.image_format, given_dtype=self.dtype)
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
        if self.real_guidance is not None:
            s["reference_preprocessing"] = self.reference_preprocessing
        if self.size == 256:
            s |= {"up_respacing": self.up_respacing, "upsample_temp": self.upsample_temp}
        return s

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check(c: GenerateConfig, *, given_format: str, given_dtype: str | None) -> None:
    """Refuse settings out of range, naming the flag (``c`` is resolved; the given values are for messages)."""
    checks = [
        (c.image_format in ("png", "jpg", "webp"), f"--format must be png, jpg or webp, got {given_format!r}"),
        (c.quality is None or 1 <= c.quality <= 100, f"--quality must be in 1..100, got {c.quality}"),
        (c.images_per_prompt >= 1, f"--images-per-prompt must be >= 1, got {c.images_per_prompt}"),
        (c.batch_size >= 1, f"--batch-size must be >= 1, got {c.batch_size}"),
        ((c.shard_size or 0) >= 1, f"--shard-size must be >= 1, got {c.shard_size}"),
        (c.guidance >= 0, f"--guidance must be >= 0, got {c.guidance}"),
        (0 < c.upsample_temp <= 2, f"--upsample-temp must be in (0, 2], got {c.upsample_temp}"),
        ((c.real_guidance is None) == (c.shots is None), "--few-shot DIR and --shots K go together; give both or neither"),
        (c.shots is None or c.shots >= 1, f"--shots must be >= 1, got {c.shots}"),
        (c.sampler in SAMPLERS, f"--sampler must be one of {', '.join(SAMPLERS)}, got {c.sampler!r}"),
        (c.dtype is None or c.dtype in DTYPES, f"--precision must be auto, fp32, fp16 or bf16, got {given_dtype!r}"),
        (
            c.reference_preprocessing in REFERENCE_PREPROCESSING,
            f"reference_preprocessing must be {' or '.join(REFERENCE_PREPROCESSING)}, "
            f"got {c.reference_preprocessing!r}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise GenerateError(message)
