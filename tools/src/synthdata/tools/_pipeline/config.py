"""The pipeline's configuration: one typed dataclass whose stage settings map onto the packages' own configs.

A field that sets a stage's setting says so in its metadata (``stages={"filter": "model", "tune": "model"}``):
:meth:`PipelineConfig.stage_config` builds each stage's package config from that stage's recipe and these
fields, so no stage re-states a default. :meth:`PipelineConfig.resolved` fills what was left unset, once,
from the pipeline's recipe and then from the stages' own configs, and the result is saved as
``R/config.json``; each stage hashes only the part of it that decides its output.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.shards.identity import settings_diff, settings_digest
from synthdata.shards.options import DEFAULT_RECIPE, option, recipe_overrides

CONFIG_SCHEMA = "synthdata.pipeline-config/2"


class PipelineError(Exception):
    """An expected pipeline failure: printed as one ``synth-pipeline: error: ...`` line."""


PROMPT_METHODS = ("le", "template", "basic")
SMOKE_RECIPE = "smoke"

#: Named settings of the pipeline itself (what each stage's package config does not decide). The stages'
#: own recipes of the same name apply under them (``smoke`` → every package's ``smoke``).
RECIPES: dict[str, dict[str, Any]] = {
    # The official code's zero-shot recipe: 200 Language Enhancement sentences a class, 10 images each (2000
    # a class) at 256 px, the CLIP filter keeping 800 (see FEW_SHOT_OVERRIDES for the few-shot one).
    DEFAULT_RECIPE: {"images_per_class": 2000, "images_per_prompt": 10, "size": 256, "eval_per_class": 50},
    # Tiny random models on the CPU: minutes, images are noise; filter and tune share the tiny RN CLIP.
    SMOKE_RECIPE: {
        "smoke": True,
        "images_per_class": 4,
        "images_per_prompt": 1,
        "size": 64,
        "gen_batch_size": 16,
        "clip_model": "synthdata-tiny-rn",
        "clip_pretrained": "none",
        "epochs": 3,
        "tune_batch_size": 32,
        "eval_per_class": 2,
    },
}
RECIPES["paper"] = dict(RECIPES[DEFAULT_RECIPE])

#: Few-shot (``--few-shot``/``--shots``, real runs): the official code generates 800 images a class with Real
#: Guidance from the basic prompt ``"<prefix> <class>"`` and trains on all of them (the filter only scores).
FEW_SHOT_OVERRIDES: dict[str, Any] = {"images_per_class": 800, "images_per_prompt": 1, "prompt_method": "basic"}

#: Settings that change how fast a stage runs but not what it writes; they are saved but not hashed, so
#: changing them on a rerun does not invalidate finished stages.
EXECUTION_KEYS = frozenset({"device", "gen_batch_size", "nproc_per_node"})


def _staged(default: Any, help: str, stages: dict[str, str], **kwargs: Any) -> Any:
    """A pipeline field that sets ``stages`` (``{stage: field of its package config}``)."""
    return option(default, help=help, stages=stages, **kwargs)


@dataclass(kw_only=True, slots=True)
class PipelineConfig:
    """Everything ``synth-pipeline`` decides. ``None`` means "the default of this recipe, else of the stage's
    own config" until :meth:`resolved` fills it in."""

    # What to make.
    dataset: str | None = option(None, help="a built-in data set (synth-prompts --list-datasets)")
    classes_file: str | None = option(None, help="a class list: .txt (one a line), .json or .csv")
    recipe: str = option(DEFAULT_RECIPE, help="the recipe the run was resolved from", cli=False)
    images_per_class: int | None = option(
        None, help="generated images a class (default 2000; 800 few-shot; 4 with --smoke)"
    )
    images_per_prompt: int | None = _staged(
        None, "images a prompt (default 10; 1 few-shot or --smoke)", {"generate": "images_per_prompt"}
    )
    keep_per_class: int | None = _staged(
        None, "images a class the filter keeps (default 40%; all few-shot)", {"filter": "per_class"}
    )
    seed: int = _staged(
        0, "global seed; same seed, same run", {"prompts": "seed", "generate": "seed", "filter": "seed", "tune": "seed"}
    )
    smoke: bool = option(False, help="tiny random models (set by --smoke)", cli=False)
    device: str = option("auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    # Real data (optional).
    eval_dir: str | None = option(
        None, help="the real test set: an ImageFolder or shards (required without --smoke)", concept="eval"
    )
    eval_per_class: int | None = option(None, help="size of the smoke stand-in test set a class (default 2)")
    few_shot: str | None = option(
        None, help="real training images (ImageFolder or shards) for Real Guidance and few-shot tuning"
    )
    shots: int | None = _staged(None, "real images a class drawn from --few-shot", {"generate": "shots", "tune": "shots"})
    # Prompts.
    prompt_method: str | None = option(
        None,
        help="le (Language Enhancement; the zero-shot default), template (the data set's CLIP templates) or "
        "basic ('<prefix> <class>'; the few-shot default)",
        choices=PROMPT_METHODS,
    )
    prefix: str | None = _staged(None, "domain prefix of the prompts (default: the data set's)", {"prompts": "prefix"})
    le_model: str | None = _staged(None, "Language Enhancement model (default: the paper's T5)", {"prompts": "le_model"})
    # Generation.
    size: int | None = _staged(
        None, "image size: 64 (base) or 256 (with the upsampler; default)", {"generate": "size"}, choices=(64, 256)
    )
    guidance: float | None = _staged(None, "classifier-free guidance scale (default 3.0)", {"generate": "guidance"})
    base_respacing: str | None = _staged(
        None, "base sampler steps (default 100; 3 with --smoke)", {"generate": "base_respacing"}
    )
    up_respacing: str | None = _staged(
        None, "upsampler DDIM steps (default fast27; ddim2 with --smoke)", {"generate": "up_respacing"}
    )
    upsample_temp: float | None = _staged(
        None, "upsampler noise temperature (default 0.997)", {"generate": "upsample_temp"}
    )
    gen_batch_size: int | None = _staged(
        None, "images a generation batch (default 32; 16 with --smoke)", {"generate": "batch_size"}
    )
    shard_size: int | None = _staged(
        None, "images a generated shard (default 1000 at 64 px, 250 at 256 px)", {"generate": "shard_size"}
    )
    image_format: str | None = _staged(
        None, "image format of the generated shards (default png)", {"generate": "image_format"},
        choices=("png", "jpg", "webp"),
    )
    base_checkpoint: str | None = _staged(
        None, "GLIDE base model: a file or a release name (default glide.base)", {"generate": "base_checkpoint"}
    )
    upsample_checkpoint: str | None = _staged(
        None, "GLIDE upsampler: a file or a release name (default glide.upsample)", {"generate": "upsample_checkpoint"}
    )
    weights_cache: str | None = _staged(
        None,
        "where downloaded weights are cached (GLIDE and CLIP; default: each library's own cache)",
        {"generate": "cache_dir", "filter": "cache_dir"},
    )
    nproc_per_node: int = option(1, help="run generation on N local GPUs (through torchrun)")
    # Filter and tune (the same CLIP).
    clip_model: str | None = _staged(
        None, "open_clip architecture for filter and tune (default RN50)", {"filter": "model", "tune": "model"}
    )
    clip_pretrained: str | None = _staged(
        None, "its weights (default openai)", {"filter": "pretrained", "tune": "pretrained"}
    )
    filter_rule: str | None = _staged(
        None, "selection rule (default paper)", {"filter": "rule"}, choices=("paper", "topk", "threshold", "top1")
    )
    epochs: int | None = _staged(None, "tuning epochs (default 30)", {"tune": "epochs"})
    tune_batch_size: int | None = _staged(None, "synthetic images a tuning step (default 512)", {"tune": "batch_size"})
    lr: float | None = _staged(
        None, "tuning learning rate (default 2e-3 zero-shot, 1e-3 few-shot)", {"tune": "lr"}, fill=False
    )
    warmup: float | None = _staged(
        None,
        "tuning lr warmup in epochs (default synth-tune's 1; the official commands use 0)",
        {"tune": "warmup_epochs"},
        concept="warmup_epochs",
        fill=False,  # hashed only when given, so runs made before the flag existed stay finished
    )

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
            (self.warmup is None or self.warmup >= 0, "--warmup-epochs must be >= 0 epochs"),
            (self.shard_size is None or self.shard_size >= 1, "--shard-size must be >= 1"),
            (self.nproc_per_node >= 1, "--nproc-per-node must be >= 1"),
            (self.size in (None, 64, 256), "--size must be 64 or 256"),
            (self.prompt_method in (None, *PROMPT_METHODS), "--prompt-method must be le, template or basic"),
            (self.image_format in (None, "png", "jpg", "webp"), "--format must be png, jpg or webp"),
            (self.recipe in RECIPES, f"--recipe must be one of {', '.join(sorted(RECIPES))}"),
        ]
        for ok, message in checks:
            if not ok:
                raise PipelineError(message)
        _check_paths(self)

    # --- resolution -----------------------------------------------------------------------------------
    @property
    def stage_recipe(self) -> str:
        """The recipe the stages' package configs start from."""
        return SMOKE_RECIPE if self.smoke else self.recipe

    def resolved(self) -> PipelineConfig:
        """A copy with every default filled in (the recipe's, then each stage's own) and paths absolute."""
        recipe = SMOKE_RECIPE if self.smoke else self.recipe
        defaults = dict(RECIPES[recipe])
        if self.few_shot is not None and not self.smoke:
            defaults.update(FEW_SHOT_OVERRIDES)
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
        return _fill_from_stages(cfg)

    def stage_settings(self, stage: str) -> dict[str, Any]:
        """``{field of the stage's package config: value}`` for the fields of this config that set it."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            target = (f.metadata.get("stages") or {}).get(stage)
            value = getattr(self, f.name)
            if target is not None and value is not None:
                out[target] = value
        return out

    def stage_config(self, stage: str, **context: Any) -> Any:
        """The package config of ``stage`` (its recipe, then this config's settings, then ``context``)."""
        cls, recipes = STAGE_CONFIGS[stage]()
        values = recipe_overrides(recipes, self.stage_recipe, owner=cls.__name__)
        values.update(self.stage_settings(stage))
        values.update(context)
        return cls(**values)

    # --- identity ---------------------------------------------------------------------------------------
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

    def hashed_settings(self, stage: str) -> dict[str, Any]:
        """The settings that decide ``stage``'s output (hashed into its marker)."""
        keys = STAGE_KEYS[stage]
        out = {k: getattr(self, k) for k in keys if k not in EXECUTION_KEYS}
        if stage == "prompts":
            out["prompts_per_class"] = self.prompts_per_class
        if stage == "tune" and self.warmup is None:
            del out["warmup"]  # hashed only when given, so runs made before the flag existed stay finished
        if self.recipe != DEFAULT_RECIPE and stage in STAGE_CONFIGS:
            out["recipe"] = self.recipe  # a recipe changes the stage's package settings (and text)
        return out


def _check_paths(cfg: PipelineConfig) -> None:
    wanted = {
        "classes_file": ("--classes", "a text file with one class name per line"),
        "eval_dir": ("--eval", "an ImageFolder (one sub-folder per class) or a shard directory"),
        "few_shot": ("--few-shot", "an ImageFolder (one sub-folder per class) or a shard directory"),
    }
    for name, (flag, what) in wanted.items():
        value = getattr(cfg, name)
        if value is not None and not Path(value).exists():
            raise PipelineError(f"{flag} {value}: no such file or directory; expected {what}")


def _resolved_stage_defaults(cfg: PipelineConfig, stage: str) -> dict[str, Any]:
    """The stage's package config under ``cfg``, with its own defaults filled, as ``{field: value}``."""
    # The stage's paths and device are the runner's to give; placeholders let the stage config check the rest
    # (a device of "auto" would be settled here, importing torch for every --dry-run and finished rerun).
    context = {
        "generate": {"out": "", "real_guidance": "few_shot" if cfg.shots else None},
        "filter": {"device": "cpu"},
    }.get(stage, {})
    built = cfg.stage_config(stage, **context)
    if hasattr(built, "resolved"):
        built = built.resolved()
    return {f.name: getattr(built, f.name) for f in dataclasses.fields(built)}


def _fill_from_stages(cfg: PipelineConfig) -> PipelineConfig:
    """Fill the stage-mapped fields still unset from the first stage config they set."""
    changes: dict[str, Any] = {}
    cache: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(cfg):
        stages = f.metadata.get("stages") or {}
        if getattr(cfg, f.name) is not None or not stages or not f.metadata.get("fill", True):
            continue
        stage, target = next(iter(stages.items()))
        if stage not in cache:
            cache[stage] = _resolved_stage_defaults(cfg, stage)
        value = cache[stage].get(target)
        if value is not None:
            changes[f.name] = value
    return dataclasses.replace(cfg, **changes)


def default_keep(images_per_class: int) -> int:
    """The filter's default zero-shot quota: 40% of the generated images of a class (the official code keeps
    800 of 2000), rounded up, at least 1."""
    return max(1, math.ceil(images_per_class * 2 / 5))


def _prompts_config() -> tuple[type, dict]:
    from synthdata.prompts.config import RECIPES as recipes
    from synthdata.prompts.config import PromptsConfig

    return PromptsConfig, recipes


def _generate_config() -> tuple[type, dict]:
    from synthdata.diffusion.runner._config import RECIPES as recipes
    from synthdata.diffusion.runner._config import GenerateConfig

    return GenerateConfig, recipes


def _filter_config() -> tuple[type, dict]:
    from synthdata.filter.config import RECIPES as recipes
    from synthdata.filter.config import FilterConfig

    return FilterConfig, recipes


def _tune_config() -> tuple[type, dict]:
    from synthdata.tune.config import RECIPES as recipes
    from synthdata.tune.config import TuneConfig

    return TuneConfig, recipes


#: Each stage's package config and its recipes (imported on first use: no torch for --help).
STAGE_CONFIGS: dict[str, Callable[[], tuple[type, dict]]] = {
    "prompts": _prompts_config,
    "generate": _generate_config,
    "filter": _filter_config,
    "tune": _tune_config,
}

STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "prompts": ("dataset", "classes_file", "smoke", "seed", "prompt_method", "prefix", "le_model"),
    "fewshot": ("dataset", "classes_file", "few_shot", "shots", "seed"),
    "generate": (
        "smoke", "seed", "images_per_class", "images_per_prompt", "size", "guidance", "base_respacing",
        "up_respacing", "upsample_temp", "image_format", "shots", "shard_size", "base_checkpoint",
        "upsample_checkpoint", "gen_batch_size", "device",
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
    return settings_digest(obj)


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every key that differs."""
    return settings_diff(old, new)
