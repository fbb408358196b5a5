"""Typed configurations for pre-training and transfer; every field is a plain value (saved as JSON)."""

from __future__ import annotations

import dataclasses
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


class PretrainError(Exception):
    """A user-facing problem with the inputs or the run (bad data, mismatched checkpoint, bad flags)."""


Amp = Literal["auto", "none", "bf16", "fp16"]


def parse_signals(spec: str) -> tuple[signal.Signals, ...]:
    """``"TERM,USR1"`` (or ``"SIGTERM,sigusr1"``) as signals; ``"none"`` or ``""``: no signal."""
    if spec.strip().lower() in ("", "none"):
        return ()
    found: list[signal.Signals] = []
    for name in spec.split(","):
        name = name.strip().upper()
        full = name if name.startswith("SIG") else f"SIG{name}"
        sig = getattr(signal.Signals, full, None) if name else None
        if sig is None or not isinstance(sig, signal.Signals) or full.startswith("SIG_"):
            raise PretrainError(
                f"--preempt-signals {spec!r}: {name!r} is not a signal name; give names like TERM,USR1 or none"
            )
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            raise PretrainError(f"--preempt-signals: {full} cannot be caught; use TERM, USR1 or USR2")
        if sig not in found:
            found.append(sig)
    return tuple(found)


@dataclass(kw_only=True, slots=True)
class TrainConfig:
    """Pre-training from shards. Defaults are a small DeiT-style recipe; see ``docs/pretrain.md``."""

    # data
    data: str
    """A shard directory (with ``dataset.json``), or a shard URL / brace pattern (then ``num_classes``)."""
    num_classes: int | None = None
    resampled: bool = False
    epoch_samples: int | None = None
    """Samples per epoch over all ranks; default: the dataset's sample count (needed for URLs)."""
    shuffle: int = 1000
    workers: int = 4
    on_error: Literal["raise", "warn"] = "raise"
    log_keys: bool = False
    # model
    model: str = "resnet50"
    img_size: int = 224
    drop_path: float | None = None
    channels_last: bool = False
    compile: bool = False
    # optimisation
    epochs: int = 100
    batch_size: int = 128
    """Per rank (per GPU) micro-batch; the global batch is batch_size × world size × accum_steps."""
    accum_steps: int = 1
    opt: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    sched: str = "cosine"
    warmup_epochs: int = 0
    min_lr: float = 1e-6
    clip_grad: float | None = None
    # regularisation / augmentation
    smoothing: float = 0.1
    mixup: float = 0.0
    cutmix: float = 0.0
    mixup_prob: float = 1.0
    auto_augment: str | None = None
    color_jitter: float = 0.4
    reprob: float = 0.0
    # precision and EMA
    amp: Amp = "auto"
    ema: bool = False
    ema_decay: float = 0.9998
    # run
    device: Literal["cpu", "cuda"] = "cuda"
    seed: int = 0
    out: str = "runs/pretrain"
    resume: bool = True
    keep_checkpoints: int = 3
    log_every: int = 0
    """Also write a metrics line every N optimizer updates (0: per epoch only)."""
    stop_after_epochs: int | None = None
    """Stop this invocation after N more epochs (e.g. to fit a job time limit); rerun to continue."""
    save_every_steps: int = 0
    """Also checkpoint every N optimizer updates inside an epoch (0: at epoch ends only); a rerun resumes
    at that update, bit-identical to an uninterrupted run (same ranks and DataLoader workers)."""
    preempt_signals: str = "TERM,USR1"
    """Signals that make every rank save a checkpoint at the next optimizer update and stop (a scheduler's
    preemption notice); ``"none"`` leaves them their default action (and skips the per-update agreement)."""
    preempt_exit_code: int = 143
    """synth-pretrain's exit status after such a stop (143 = 128 + SIGTERM, what a job killed by SIGTERM
    reports); rerun the same command to resume."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in names})

    def validate(self) -> None:
        """Check flag values that do not need the data or the device."""
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "accum_steps": self.accum_steps,
            "img_size": self.img_size,
            "keep_checkpoints": self.keep_checkpoints,
        }
        for name, value in positive.items():
            if value < 1:
                raise PretrainError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        for name, value in (
            ("workers", self.workers),
            ("shuffle", self.shuffle),
            ("log_every", self.log_every),
            ("save_every_steps", self.save_every_steps),
        ):
            if value < 0:
                raise PretrainError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        if self.num_classes is not None and self.num_classes < 1:
            raise PretrainError(f"--num-classes must be >= 1, got {self.num_classes}")
        if self.epoch_samples is not None and self.epoch_samples < 1:
            raise PretrainError(f"--epoch-samples must be >= 1, got {self.epoch_samples}")
        if self.stop_after_epochs is not None and self.stop_after_epochs < 1:
            raise PretrainError(f"--stop-after-epochs must be >= 1, got {self.stop_after_epochs}")
        parse_signals(self.preempt_signals)
        if not 1 <= self.preempt_exit_code <= 255:
            raise PretrainError(f"--preempt-exit-code must be in 1..255, got {self.preempt_exit_code}")
        if not 0.0 <= self.smoothing < 1.0:
            raise PretrainError(f"--smoothing must be in [0, 1), got {self.smoothing}")
        if self.device not in ("cpu", "cuda"):
            raise PretrainError(f"--device must be cpu or cuda, got {self.device!r}")
        if self.amp not in ("auto", "none", "bf16", "fp16"):
            raise PretrainError(f"--amp must be auto, none, bf16 or fp16, got {self.amp!r}")
        if self.device == "cpu" and self.amp in ("bf16", "fp16"):
            raise PretrainError(
                f"--amp {self.amp} needs --device cuda; on the CPU training runs in float32 (drop --amp)"
            )
        if (self.mixup > 0 or self.cutmix > 0) and self.batch_size % 2:
            raise PretrainError(f"mixup/cutmix need an even --batch-size, got {self.batch_size}")

    @property
    def amp_dtype(self) -> str | None:
        """``"bfloat16"``/``"float16"`` or None: ``auto`` is bf16 on CUDA and off on the CPU."""
        if self.amp == "auto":
            return "bfloat16" if self.device == "cuda" else None
        return {"none": None, "bf16": "bfloat16", "fp16": "float16"}[self.amp]

    @property
    def out_dir(self) -> Path:
        return Path(self.out)


@dataclass(kw_only=True, slots=True)
class TransferConfig:
    """Fine-tune or linear-probe a pre-training checkpoint on an ImageFolder dataset."""

    ckpt: str
    train_dir: str
    eval_dir: str
    mode: Literal["finetune", "linear"] = "finetune"
    epochs: int = 10
    batch_size: int = 64
    lr: float | None = None
    """Default: 1e-4 for finetune, 1e-3 for linear (both AdamW)."""
    weight_decay: float | None = None
    img_size: int | None = None
    """Default: the checkpoint's pre-training image size."""
    use_ema: bool = False
    workers: int = 4
    device: Literal["cpu", "cuda"] = "cuda"
    amp: Amp = "auto"
    seed: int = 0
    out: str | None = None
    """Where ``transfer.jsonl`` goes; default: the checkpoint's run directory."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def amp_dtype(self) -> str | None:
        if self.amp == "auto":
            return "bfloat16" if self.device == "cuda" else None
        return {"none": None, "bf16": "bfloat16", "fp16": "float16"}[self.amp]

    def validate(self) -> None:
        for name, value in (("epochs", self.epochs), ("batch_size", self.batch_size)):
            if value < 1:
                raise PretrainError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.mode not in ("finetune", "linear"):
            raise PretrainError(f"--mode must be finetune or linear, got {self.mode!r}")
        if self.device not in ("cpu", "cuda"):
            raise PretrainError(f"--device must be cpu or cuda, got {self.device!r}")
        if self.device == "cpu" and self.amp in ("bf16", "fp16"):
            raise PretrainError(
                f"--amp {self.amp} needs --device cuda; on the CPU transfer runs in float32 (drop --amp)"
            )
