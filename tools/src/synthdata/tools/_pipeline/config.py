"""The pipeline's configuration: one typed dataclass, resolved once (smoke or paper defaults filled in) and
saved as ``R/config.json``; each stage hashes only the part of it that decides its output."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_SCHEMA = "synthdata.pipeline-config/1"


class PipelineError(Exception):
    """An expected pipeline failure: printed as one ``synth-pipeline: error: ...`` line."""


#: Defaults that differ between ``--smoke`` (tiny random models, CPU, seconds) and a real run (the paper's
#: recipe). Recorded, resolved, in ``R/config.json``.
PROMPT_METHODS = ("le", "template", "basic")

SMOKE_DEFAULTS: dict[str, Any] = {
    "images_per_class": 4,
    "images_per_prompt": 1,
    "size": 64,
    # The generation runner's smoke defaults (synthdata.diffusion.runner.SMOKE_*_RESPACING): tiny random
    # models make noise whatever the step count.
    "base_respacing": "3",
    "up_respacing": "ddim2",
    "gen_batch_size": 16,
    "clip_model": "synthdata-tiny-rn",
    "clip_pretrained": "none",
    "epochs": 3,
    "tune_batch_size": 32,
    "eval_per_class": 2,
}
# The official code's zero-shot recipe: 200 Language Enhancement sentences a class, 10 images each (2000
# a class), the CLIP filter keeping 800 (see FEW_SHOT_DEFAULTS for the few-shot one).
PAPER_DEFAULTS: dict[str, Any] = {
    "images_per_class": 2000,
    "images_per_prompt": 10,
    "size": 256,
    "base_respacing": "100",
    "up_respacing": "fast27",
    "gen_batch_size": None,  # synth-generate's own default
    "clip_model": "RN50",
    "clip_pretrained": "openai",
    "epochs": 30,
    "tune_batch_size": None,  # synth-tune's default: the paper's 512
    "eval_per_class": 50,
}

#: Few-shot (``--few-shot``/``--shots``, real runs): the official code generates 800 images a class with Real
#: Guidance from the basic prompt ``"<prefix> <class>"`` and trains on all of them (the filter only scores).
FEW_SHOT_DEFAULTS: dict[str, Any] = {"images_per_class": 800, "images_per_prompt": 1, "prompt_method": "basic"}

#: Settings that change how fast a stage runs but not what it writes; they are saved but not hashed, so
#: changing them on a rerun does not invalidate finished stages.
EXECUTION_KEYS = frozenset({"device", "gen_batch_size"})


@dataclass(kw_only=True, slots=True)
class PipelineConfig:
    """Everything ``synth-pipeline`` decides. ``None`` means "the default for this mode" until
    :meth:`resolved` fills it in."""

    # What to make.
    dataset: str | None = None
    classes_file: str | None = None
    images_per_class: int | None = None
    images_per_prompt: int | None = None
    keep_per_class: int | None = None
    seed: int = 0
    smoke: bool = False
    device: str = "auto"
    # Real data (optional).
    eval_dir: str | None = None
    eval_per_class: int | None = None
    few_shot: str | None = None
    shots: int | None = None
    # Prompts.
    prompt_method: str | None = None
    prefix: str | None = None
    le_model: str | None = None
    # Generation.
    size: int | None = None
    guidance: float = 3.0
    base_respacing: str | None = None
    up_respacing: str | None = None
    upsample_temp: float = 0.997
    gen_batch_size: int | None = None
    image_format: str = "png"
    # Filter and tune (the same CLIP).
    clip_model: str | None = None
    clip_pretrained: str | None = None
    filter_rule: str | None = None
    epochs: int | None = None
    tune_batch_size: int | None = None
    lr: float | None = None
    warmup: float | None = None  # epochs; None: synth-tune's default (1), the official commands use 0

    def __post_init__(self) -> None:
        if (self.dataset is None) == (self.classes_file is None):
            raise PipelineError("give exactly one of --dataset NAME or --classes FILE")
        if (self.few_shot is None) != (self.shots is None):
            raise PipelineError("--few-shot DIR and --shots K go together")
        checks = [
            (self.images_per_class is None or self.images_per_class >= 1, "--images-per-class must be >= 1"),
            (self.images_per_prompt is None or self.images_per_prompt >= 1, "--images-per-prompt must be >= 1"),
            (self.keep_per_class is None or self.keep_per_class >= 1, "--keep-per-class must be >= 1"),
            (self.eval_per_class is None or self.eval_per_class >= 1, "--eval-per-class must be >= 1"),
            (self.shots is None or self.shots >= 1, "--shots must be >= 1"),
            (self.epochs is None or self.epochs >= 1, "--epochs must be >= 1"),
            (self.warmup is None or self.warmup >= 0, "--warmup must be >= 0 epochs"),
            (self.size in (None, 64, 256), "--size must be 64 or 256"),
            (self.prompt_method in (None, *PROMPT_METHODS), "--prompt-method must be le, template or basic"),
            (self.image_format in ("png", "jpg", "webp"), "--format must be png, jpg or webp"),
        ]
        for ok, message in checks:
            if not ok:
                raise PipelineError(message)
        for name in ("classes_file", "eval_dir", "few_shot"):
            value = getattr(self, name)
            if value is not None and not Path(value).exists():
                flag, wanted = {
                    "classes_file": ("--classes", "a text file with one class name per line"),
                    "eval_dir": ("--eval", "an ImageFolder (one sub-folder per class) or a shard directory"),
                    "few_shot": ("--few-shot", "an ImageFolder (one sub-folder per class) or a shard directory"),
                }[name]
                raise PipelineError(f"{flag} {value}: no such file or directory; expected {wanted}")

    def resolved(self) -> PipelineConfig:
        """A copy with every mode default filled in and paths made absolute."""
        defaults = dict(SMOKE_DEFAULTS if self.smoke else PAPER_DEFAULTS)
        if self.few_shot is not None and not self.smoke:
            defaults.update(FEW_SHOT_DEFAULTS)
        defaults.setdefault("prompt_method", "le")
        changes: dict[str, Any] = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        for name in ("classes_file", "eval_dir", "few_shot"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = str(Path(value).resolve())
        if self.clip_pretrained is None and self.clip_model is not None and not self.smoke:
            changes["clip_pretrained"] = "openai"
        cfg = dataclasses.replace(self, **changes)
        if cfg.keep_per_class is None:
            few_shot_paper = cfg.few_shot is not None and not cfg.smoke
            n = int(cfg.images_per_class)  # type: ignore[arg-type]
            cfg.keep_per_class = n if few_shot_paper else default_keep(n)
        if cfg.keep_per_class > cfg.images_per_class:  # type: ignore[operator]
            raise PipelineError(
                f"--keep-per-class {cfg.keep_per_class} is more than --images-per-class {cfg.images_per_class}"
            )
        return cfg

    @property
    def prompts_per_class(self) -> int:
        """Prompts per class so that prompts x images per prompt (x shots, with Real Guidance: every prompt
        is paired with each of its class's reference images) >= images per class."""
        per_prompt = (self.images_per_prompt or 1) * (self.shots or 1)
        return math.ceil((self.images_per_class or 1) / per_prompt)

    @property
    def name(self) -> str:
        return self.dataset if self.dataset is not None else Path(self.classes_file or "classes").stem

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> PipelineConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in fields})

    def stage_config(self, stage: str) -> dict[str, Any]:
        """The settings that decide ``stage``'s output (hashed into its marker)."""
        keys = STAGE_KEYS[stage]
        out = {k: getattr(self, k) for k in keys if k not in EXECUTION_KEYS}
        if stage == "prompts":
            out["prompts_per_class"] = self.prompts_per_class
        if stage == "tune" and self.warmup is None:
            del out["warmup"]  # hashed only when given, so runs made before the flag existed stay finished
        return out


def default_keep(images_per_class: int) -> int:
    """The filter's default zero-shot quota: 40% of the generated images of a class (the official code keeps
    800 of 2000), rounded up, at least 1."""
    return max(1, math.ceil(images_per_class * 2 / 5))


STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "prompts": ("dataset", "classes_file", "smoke", "seed", "prompt_method", "prefix", "le_model"),
    "fewshot": ("dataset", "classes_file", "few_shot", "shots", "seed"),
    "generate": (
        "smoke", "seed", "images_per_class", "images_per_prompt", "size", "guidance", "base_respacing",
        "up_respacing", "upsample_temp", "image_format", "shots", "gen_batch_size", "device",
    ),
    "filter": ("smoke", "clip_model", "clip_pretrained", "filter_rule", "keep_per_class", "seed", "device"),
    "eval": ("dataset", "classes_file", "eval_per_class", "seed"),
    "tune": (
        "smoke", "clip_model", "clip_pretrained", "epochs", "tune_batch_size", "lr", "warmup", "shots",
        "seed", "device",
    ),
    "report": ("smoke",),
}


def config_hash(obj: Any) -> str:
    """SHA-256 of canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every key that differs."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
