"""The checked inputs of a tuning run: class list, templates, image sets, few-shot picks, output paths.

:func:`check_inputs` reads and checks everything a run needs (from disk, or the shard index of a directory
URL) before anything is created, so a bad input fails with one :class:`~synthdata.tune.data.DataError`
naming it (and its option: ``--in``, ``--eval``, ``--few-shot``) and leaves no ``--out`` behind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthdata.tune.config import TuneConfig
from synthdata.tune.data import DataError, ImageSet, load_image_set, sample_few_shot

PathLike = str | os.PathLike[str]


@dataclass(slots=True)
class Inputs:
    """A run's checked inputs: class names and templates, the test set, the synthetic training set
    (``syn_set``), the few-shot pool (``real_set``) with the indices drawn from it (``real_idx``), and the
    output and feature-cache directories (``cache_root`` None: no cache)."""

    classnames: list[str]
    templates: list[str]
    out: Path
    cache_root: Path | None
    eval_set: ImageSet
    syn_set: ImageSet | None = None
    real_set: ImageSet | None = None
    real_idx: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classnames)


def check_inputs(
    cfg: TuneConfig,
    *,
    classnames: Sequence[str],
    templates: Sequence[str],
    eval_data: PathLike,
    out: PathLike,
    train: PathLike | Sequence[PathLike] = (),
    few_shot: PathLike | None = None,
    cache_dir: PathLike | None = None,
    class_aliases: Sequence[Sequence[str]] | None = None,
) -> Inputs:
    """Check the class list, the data sources and ``out``, load the image sets and draw the few-shot
    indices; creates nothing. Raises :class:`DataError` naming the bad input.

    ``train``, ``eval_data`` and ``few_shot`` are local directories or shard directory URLs (``s3://``,
    ``gs://``, ``http(s)://``; kept as given, never turned into paths); ImageFolders are local only, their
    folders matched to the classes by name (``class_aliases``: other names of each class, e.g. a dataset's
    native folder names; see :func:`synthdata.tune.classmatch.folder_classes`)."""
    classnames, templates = list(classnames), list(templates)
    num_classes = len(classnames)
    if num_classes < 2:
        raise DataError(f"need at least 2 classes, got {num_classes}")
    train = [train] if isinstance(train, (str, os.PathLike)) else list(train)
    if not train and few_shot is None:
        raise DataError("nothing to train on: give synthetic shards (--in) and/or real few-shot data")
    if (few_shot is None) != (cfg.shots is None):
        raise DataError("few-shot training needs both the real data (--few-shot DIR) and --shots K")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a directory; choose another")
    cache_root = None
    if cfg.use_cache:
        cache_root = Path(cache_dir) if cache_dir is not None else out / "feature_cache"
    by_name = {"classnames": classnames, "aliases": class_aliases}
    inputs = Inputs(
        classnames,
        templates,
        out,
        cache_root,
        syn_set=load_image_set(train, num_classes, flag="--in", **by_name) if train else None,
        eval_set=load_image_set(eval_data, num_classes, flag="--eval", **by_name),
    )
    if few_shot is not None:
        assert cfg.shots is not None
        inputs.real_set = load_image_set(few_shot, num_classes, flag="--few-shot", **by_name)
        inputs.real_idx = sample_few_shot(inputs.real_set.labels, cfg.shots, cfg.seed, num_classes)
    return inputs
