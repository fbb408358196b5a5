"""Checkpoints that load with ``torch.load(..., weights_only=True)``: tensors and plain containers only.

A checkpoint holds ``format``, ``epoch`` (completed epochs), ``global_update``, ``model``, ``optimizer``,
``scheduler``, ``ema``, ``scaler`` (state dicts or None), ``rng`` (one entry per rank: torch, CUDA, numpy
and Python generator states as tensors), ``config`` (the TrainConfig as a dict), ``classes``,
``num_classes``, ``data_config`` (timm input size, mean, std, interpolation), ``world_size``,
``data_workers``, the epoch's ``metrics`` and ``in_epoch``: None for a checkpoint written at the end of an
epoch, and for one written inside an epoch (``--save-every-steps``) where that epoch stands: ``epoch``
(0-based index of the epoch in progress, equal to the completed-epoch count), ``micro_batches`` and
``updates`` done in it on every rank, ``layout`` (the settings that fix the batch order) and ``ranks`` (each
rank's running loss sums and a digest of the sample keys it consumed). Files are written to a temp name,
fsynced and renamed, so ``last.pt`` is always whole.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthdata.pretrain.config import PretrainError
from synthdata.shards.atomic import TEMP_MARK, atomic_open, fsync_dir, temp_path_for

FORMAT = "synthdata.pretrain.checkpoint/1"
CHECKPOINT_FORMAT = FORMAT  # the name the package exports
LAST = "last.pt"
EPOCH_PATTERN = re.compile(r"^epoch_(\d{3,})\.pt$")


def capture_rng(device: torch.device) -> dict[str, Any]:
    """This process's generator states, as tensors and plain values."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": {
            "version": py_version,
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss": py_gauss,
        },
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "cuda": None,
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(obj: dict[str, Any], directory: Path, epoch: int, keep: int) -> Path:
    """Write ``epoch_NNN.pt`` atomically, point ``last.pt`` at it, keep the newest ``keep`` epoch files."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"epoch_{epoch:03d}.pt"
    with atomic_open(final, "wb") as fh:
        torch.save(obj, fh)
    last_tmp = temp_path_for(directory / LAST)
    try:
        try:
            os.link(final, last_tmp)  # no second write: last.pt is another name for the same file
        except OSError:
            with open(final, "rb") as src, open(last_tmp, "wb") as dst:
                dst.write(src.read())
                dst.flush()
                os.fsync(dst.fileno())
        os.replace(last_tmp, directory / LAST)
    finally:
        with contextlib.suppress(FileNotFoundError):
            last_tmp.unlink()
    fsync_dir(directory)
    epochs = sorted(p for p in directory.iterdir() if EPOCH_PATTERN.match(p.name))
    for old in epochs[: max(len(epochs) - keep, 0)]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    return final


def save_in_epoch_checkpoint(obj: dict[str, Any], directory: Path) -> Path:
    """Replace ``last.pt`` atomically by a checkpoint taken inside an epoch (no ``epoch_NNN.pt`` file)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / LAST
    # a new file renamed over last.pt: the epoch file it was a hard link to keeps its contents
    with atomic_open(final, "wb") as fh:
        torch.save(obj, fh)
    return final


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete the temp files of saves that never finished (a SIGKILL during a save, e.g. a preemption whose
    grace period ran out): each is as large as a checkpoint. Call it before any save of this run starts."""
    removed = []
    for path in directory.glob(f".*{TEMP_MARK}*"):
        name = path.name[1:].split(TEMP_MARK, 1)[0]
        if name == LAST or EPOCH_PATTERN.match(name):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` onto the CPU and check its format."""
    path = Path(path)
    if not path.is_file():
        raise PretrainError(
            f"checkpoint {path} does not exist; pre-train first (synth-pretrain --out RUN writes "
            "RUN/checkpoints/last.pt) or pass the path of an existing .pt file"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated / foreign files
        raise PretrainError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise PretrainError(
            f"{path} is not a synthdata.pretrain checkpoint (format {obj.get('format') if isinstance(obj, dict) else None!r})"
        )
    return obj
