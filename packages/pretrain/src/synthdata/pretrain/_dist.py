"""torch.distributed set-up: one process per device under torchrun (NCCL on GPUs, gloo on the CPU)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from synthdata.pretrain.config import PretrainError
from synthdata.shards import work_split

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def require_cuda() -> None:
    """Refuse ``--device cuda`` where no CUDA device is visible."""
    if not torch.cuda.is_available():
        raise PretrainError("--device cuda but no CUDA device is visible; pass --device cpu or auto")


def init_distributed(device: str) -> DistInfo:
    """Read torchrun's variables and, when ``WORLD_SIZE`` > 1, join the process group.

    Slurm variables alone (a plain ``srun synth-pretrain``) are refused unless there is one task: launch
    ``torchrun`` under ``srun`` instead (``docs/pretrain.md``), which sets ``RANK``/``WORLD_SIZE``.
    """
    split = work_split()
    if split.source == "slurm" and split.world_size > 1:
        raise PretrainError(
            f"Slurm says this is task {split.rank} of {split.world_size} but no torchrun variables are set; "
            "launch with `srun torchrun --nnodes ... --nproc-per-node ... --no-python synth-pretrain ...` "
            "(see docs/pretrain.md)"
        )
    rank, world_size = (split.rank, split.world_size) if split.source == "torchrun" else (0, 1)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        require_cuda()
        if local_rank >= torch.cuda.device_count():
            raise PretrainError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA devices are visible; "
                "set --nproc-per-node to the number of GPUs per node"
            )
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"backend": backend}
        if device == "cuda":
            kwargs["device_id"] = dev
        dist.init_process_group(**kwargs)
        log.debug("rank %d/%d joined the %s process group", rank, world_size, backend)
    return DistInfo(rank, world_size, local_rank, dev)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        if info.device.type == "cuda":
            dist.barrier(device_ids=[info.device.index])
        else:
            dist.barrier()


def _all_reduce(values: list[float], info: DistInfo, op: Any) -> list[float]:
    if not info.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=op)
    return t.tolist()


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Sum a few floats over ranks (float64 on the training device)."""
    return _all_reduce(values, info, dist.ReduceOp.SUM)


def all_reduce_max(values: list[float], info: DistInfo) -> list[float]:
    """The largest of each of a few floats over ranks (float64 on the training device)."""
    return _all_reduce(values, info, dist.ReduceOp.MAX)


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` (small, picklable), in rank order."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out

