"""The two types every stage module uses: :class:`RunContext` (what a stage gets) and :class:`Stage`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthdata.tools._pipeline.config import PipelineConfig


@dataclass(frozen=True, slots=True)
class HeadTexts:
    """The text of the CLIP heads: the filter's (``filter_names`` None: the class names) and the tuner's, by
    recipe, and each class's other folder names (ImageFolder matching; None: the class names only)."""

    filter_names: list[str] | None
    filter_templates: list[str]
    tune_names: list[str]
    tune_templates: list[str]
    class_aliases: list[list[str]] | None


@dataclass(slots=True)
class RunContext:
    """What every stage gets: the resolved config, the run directory and the classes."""

    cfg: PipelineConfig
    run_dir: Path
    classnames: list[str]
    clip_templates: list[str]
    prefix: str
    suffix: str
    progress: bool = False
    texts: HeadTexts | None = None
    _clip: Any = None
    _device: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def bar(self, total: int, desc: str, unit: str) -> Iterator[Any]:
        """A progress bar with ETA on stderr (a silent one with ``--quiet``)."""
        from tqdm import tqdm

        with tqdm(total=total, desc=desc, unit=unit, disable=not self.progress, file=sys.stderr,
                  dynamic_ncols=True) as bar:
            yield bar

    def path(self, rel: str) -> Path:
        return self.run_dir / rel

    @property
    def device(self) -> str:
        """The torch device of ``cfg.device`` (``auto``: CUDA when available), resolved on first use, so a
        run whose stages are all finished never imports torch."""
        if self._device is None:
            if self.cfg.device != "auto":
                self._device = self.cfg.device
            else:
                import torch

                self._device = "cuda" if torch.cuda.is_available() else "cpu"
        return self._device

    def clip(self) -> Any:
        """The CLIP model shared by the filter and tune stages, loaded once per process.

        Random (smoke) weights are drawn after seeding torch with the run's seed, so the filter and the
        tuner see the same model even when they run in different processes (a resumed run).
        """
        if self._clip is None:
            import torch

            from synthdata.clip import load_clip

            torch.manual_seed(self.cfg.seed)
            self._clip = load_clip(
                self.cfg.clip_model, self.cfg.clip_pretrained, device=self.device, cache_dir=self.cfg.weights_cache
            )
        return self._clip


@dataclass(frozen=True, slots=True)
class Stage:
    """One step: ``run`` writes ``outputs`` (paths relative to the run directory) from ``inputs``."""

    name: str
    outputs: tuple[str, ...]
    inputs: Callable[[RunContext], dict[str, Path]]
    run: Callable[[RunContext], dict[str, Any]]
    enabled: Callable[[RunContext], bool] = lambda ctx: True
    keep_partial: bool = False
