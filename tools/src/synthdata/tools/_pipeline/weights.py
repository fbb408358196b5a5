"""The model files each stage of a run needs, as checks run before the first stage (see
:func:`synthdata.tools._pipeline.runner.check_weights`). Each check downloads what is missing where the
network allows and raises the library's own one-line error where it does not."""

from __future__ import annotations

from collections.abc import Callable

from synthdata.tools._pipeline.config import PipelineConfig


def _le_model(cfg: PipelineConfig) -> Callable[[], None]:
    def check() -> None:
        from synthdata.prompts.le import ensure_model

        ensure_model(str(cfg.le_model), option="--le-model")

    return check


def _glide(cfg: PipelineConfig, name: str) -> Callable[[], None]:
    def check() -> None:
        from synthdata.diffusion.checkpoints import resolve_checkpoint

        resolve_checkpoint(name, cfg.weights_cache)

    return check


def _clip(cfg: PipelineConfig) -> Callable[[], None]:
    def check() -> None:
        from synthdata.clip import ensure_weights

        ensure_weights(str(cfg.clip_model), cfg.clip_pretrained, cfg.weights_cache)

    return check


def required_weights(cfg: PipelineConfig) -> list[tuple[tuple[str, ...], Callable[[], None]]]:
    """``(stages, check)`` for every model file a real (not smoke) run of ``cfg`` loads, in stage order; the
    CLIP that the filter and the tuner share is one check for both."""
    checks: list[tuple[tuple[str, ...], Callable[[], None]]] = []
    if cfg.prompt_method == "le":
        checks.append((("prompts",), _le_model(cfg)))
    checks.append((("generate",), _glide(cfg, str(cfg.base_checkpoint))))
    if cfg.size == 256:
        checks.append((("generate",), _glide(cfg, str(cfg.upsample_checkpoint))))
    checks.append((("filter", "tune"), _clip(cfg)))
    return checks
