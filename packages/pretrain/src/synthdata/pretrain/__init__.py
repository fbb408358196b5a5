"""synthdata.pretrain: timm pre-training streamed from shards on torchrun, and transfer evaluation.

:func:`train` runs (or resumes) pre-training from a :class:`TrainConfig`; :func:`transfer` fine-tunes or
linear-probes a checkpoint on an ImageFolder dataset from a :class:`TransferConfig`. Checkpoints load with
``torch.load(..., weights_only=True)`` (:func:`load_checkpoint`). See ``docs/pretrain.md``.

The names below are imported on first use (``lazy_loader``), so :mod:`synthdata.pretrain.config` loads
without torch and timm (command lines answer ``--help`` at once).
"""

import lazy_loader

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_metrics": ["read_metrics"],
        "checkpoint": ["CHECKPOINT_FORMAT", "load_checkpoint"],
        "config": ["PretrainError", "TrainConfig", "TransferConfig"],
        "data": ["EpochPlan", "ShardSource", "plan_epochs", "resolve_source"],
        "train": ["train"],
        "transfer": ["transfer"],
    },
)


__all__ = [
    "CHECKPOINT_FORMAT",
    "EpochPlan",
    "PretrainError",
    "ShardSource",
    "TrainConfig",
    "TransferConfig",
    "load_checkpoint",
    "plan_epochs",
    "read_metrics",
    "resolve_source",
    "train",
    "transfer",
]
