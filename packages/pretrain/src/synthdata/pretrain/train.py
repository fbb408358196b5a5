"""Pre-train a timm model on shards, one process per device under torchrun, with exact resume at epoch ends
and, with ``save_every_steps`` or on a preemption signal, at any optimizer update inside an epoch."""

from __future__ import annotations

from typing import Any

from synthdata.pretrain import _dist
from synthdata.pretrain._models import check_model_name
from synthdata.pretrain._preempt import PreemptionWatch
from synthdata.pretrain._trainer import Trainer
from synthdata.pretrain.config import TrainConfig, parse_signals


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) pre-training; returns the summary that ends ``metrics.jsonl``.

    Under torchrun each process trains one replica (DDP); without it, a single process. Rank 0 writes
    ``config.json``, ``metrics.jsonl`` and ``checkpoints/``; every rank reads ``checkpoints/last.pt`` to
    resume, so multi-node runs need ``--out`` on a shared file system. On a signal in
    ``cfg.preempt_signals`` (a scheduler's preemption notice) every rank saves at the next optimizer update
    and the run stops: the summary's ``preempted`` names the signal (``synth-pretrain`` then exits with
    ``cfg.preempt_exit_code``), and after that stop the process ignores those signals while it winds down.
    """
    cfg.validate()
    check_model_name(cfg.model)
    info = _dist.init_distributed(cfg.device)
    try:
        with PreemptionWatch(parse_signals(cfg.preempt_signals), info) as preempt:
            return Trainer(cfg, info, preempt).fit()
    finally:
        _dist.shutdown()
