"""Typed configurations for pre-training and transfer; every field is a plain value (saved as JSON)."""

from __future__ import annotations

import dataclasses
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from synthdata.shards.options import option, resolve_device


class PretrainError(Exception):
    """A user-facing problem with the inputs or the run (bad data, mismatched checkpoint, bad flags)."""


Amp = Literal["auto", "fp32", "none", "bf16", "fp16"]


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


# the device and precision fields, the same in both configs
_DEVICE_HELP = "auto (CUDA when available), cpu or cuda"
_DEVICES = ("auto", "cpu", "cuda")
_PRECISION_HELP = "mixed precision: auto (bf16 on CUDA, off on the CPU), fp32 (off), bf16 or fp16"
_PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class _DeviceAndPrecision:
    """What both configs do with their ``device`` and ``amp`` fields."""

    __slots__ = ()
    device: str
    amp: Amp

    def __post_init__(self) -> None:
        if self.device == "auto":
            self.device = resolve_device("auto")
        if self.amp == "none":  # the spelling of earlier releases
            self.amp = "fp32"

    @property
    def amp_dtype(self) -> str | None:
        """``"bfloat16"``/``"float16"`` or None: ``auto`` is bf16 on CUDA and off on the CPU."""
        if self.amp == "auto":
            return "bfloat16" if self.device == "cuda" else None
        return {"none": None, "fp32": None, "bf16": "bfloat16", "fp16": "float16"}[self.amp]

    def _check_device_and_precision(self, what: str) -> None:
        if self.device not in ("cpu", "cuda"):
            raise PretrainError(f"--device must be cpu or cuda, got {self.device!r}")
        if self.amp not in ("auto", "fp32", "none", "bf16", "fp16"):
            raise PretrainError(f"--precision must be auto, fp32, bf16 or fp16, got {self.amp!r}")
        if self.device == "cpu" and self.amp in ("bf16", "fp16"):
            raise PretrainError(
                f"--precision {self.amp} needs --device cuda; on the CPU {what} runs in float32 (drop --precision)"
            )


#: Named settings over the defaults of :class:`TrainConfig` (``default``). ``smoke``: a tiny random timm model
#: on the CPU, for checking an install.
TRAIN_RECIPES: dict[str, dict[str, Any]] = {
    "smoke": {"model": "test_resnet", "img_size": 32, "epochs": 1, "batch_size": 8, "workers": 0, "device": "cpu"},
}
TRANSFER_RECIPES: dict[str, dict[str, Any]] = {
    "smoke": {"epochs": 1, "batch_size": 8, "workers": 0, "device": "cpu"},
}


@dataclass(kw_only=True, slots=True)
class TrainConfig(_DeviceAndPrecision):
    """Pre-training from shards. Defaults are a small DeiT-style recipe; see ``docs/pretrain.md``."""

    # data
    data: str = option(help="shard directory (with dataset.json), or a shard URL / brace pattern")
    num_classes: int | None = option(None, help="class count (default: from dataset.json; needed for URL patterns)")
    resampled: bool = option(False, help="draw shards with replacement (needs no full pass)")
    epoch_samples: int | None = option(None, help="samples per epoch over all ranks (default: the dataset's size)")
    shuffle: int = option(8192, help="sample shuffle buffer (timm's; a quarter of it fills before the first sample)")
    workers: int = option(4, help="DataLoader workers per rank")
    on_error: Literal["raise", "warn"] = option("raise", help="what a corrupt sample does: raise or warn and skip")
    log_keys: bool = option(False, help="write OUT/keys/epochNNN-rankNNN.txt (debug)")
    # model
    model: str = option("resnet50", help="any timm model name")
    img_size: int = option(224, help="model input size in pixels")
    drop_path: float | None = option(None, help="stochastic depth rate")
    channels_last: bool = option(False, help="channels_last memory format")
    compile: bool = option(False, help="torch.compile the model")
    # optimisation
    epochs: int = option(100, help="training epochs")
    batch_size: int = option(
        128, help="per-rank micro-batch; the global batch is batch size x world size x accumulation steps"
    )
    accum_steps: int = option(1, help="gradient accumulation steps")
    opt: str = option("adamw", help="timm optimizer name")
    lr: float = option(1e-3, help="peak learning rate")
    weight_decay: float = option(0.05, help="weight decay")
    momentum: float = option(0.9, help="momentum of SGD-like optimizers")
    sched: str = option("cosine", help="timm scheduler name")
    warmup_epochs: int = option(0, help="linear warmup epochs")
    min_lr: float = option(1e-6, help="final learning rate of the schedule")
    clip_grad: float | None = option(None, help="clip the gradient norm to this value", concept="grad_clip")
    # regularisation / augmentation
    smoothing: float = option(0.1, help="label smoothing", concept="label_smoothing")
    mixup: float = option(0.0, help="mixup alpha (0: off)")
    cutmix: float = option(0.0, help="cutmix alpha (0: off)")
    mixup_prob: float = option(1.0, help="probability of mixup or cutmix per batch")
    auto_augment: str | None = option(None, help="timm auto-augment policy, e.g. rand-m9-mstd0.5-inc1")
    color_jitter: float = option(0.4, help="colour jitter strength")
    reprob: float = option(0.0, help="random erasing probability")
    # precision and EMA
    amp: Amp = option("auto", help=_PRECISION_HELP, concept="precision", choices=_PRECISIONS)
    ema: bool = option(False, help="keep an EMA of the weights")
    ema_decay: float = option(0.9998, help="EMA decay")
    # run
    device: str = option("auto", help=_DEVICE_HELP, choices=_DEVICES)
    seed: int = option(0, help="seed")
    out: str = option("runs/pretrain", help="run directory")
    resume: bool = option(
        True, help="start from scratch even if OUT holds a checkpoint (the old one is replaced at the next save)",
        concept="fresh", negate=True,
    )
    keep_checkpoints: int = option(3, help="epoch checkpoint files to keep")
    log_every: int = option(0, help="also write a metrics line every N optimizer updates (0: per epoch only)")
    stop_after_epochs: int | None = option(
        None, help="stop this invocation after N more epochs (to fit a job time limit); rerun to continue"
    )
    save_every_steps: int = option(
        0,
        help="also checkpoint every N optimizer updates inside an epoch; a rerun resumes there, bit-identical "
        "to an uninterrupted run (0: at epoch ends only)",
        metavar="N",
    )
    preempt_signals: str = option(
        "TERM,USR1",
        help="on these signals every rank saves at the next update and stops (a scheduler's preemption notice); "
        "none: off",
        metavar="SIGS",
    )
    preempt_exit_code: int = option(
        143, help="exit status after such a stop, for the scheduler's requeue rules (143 = 128 + SIGTERM)",
        metavar="CODE",
    )

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
            raise PretrainError(f"--label-smoothing must be in [0, 1), got {self.smoothing}")
        self._check_device_and_precision("training")
        if (self.mixup > 0 or self.cutmix > 0) and self.batch_size % 2:
            raise PretrainError(f"mixup/cutmix need an even --batch-size, got {self.batch_size}")

    @property
    def out_dir(self) -> Path:
        return Path(self.out)


@dataclass(kw_only=True, slots=True)
class TransferConfig(_DeviceAndPrecision):
    """Fine-tune or linear-probe a pre-training checkpoint on an ImageFolder dataset."""

    ckpt: str = option(help="a pre-training checkpoint (RUN/checkpoints/last.pt)", concept="checkpoint")
    train_dir: str = option(help="real training images: an ImageFolder, one sub-folder per class", concept="train")
    eval_dir: str = option(help="real test images: an ImageFolder with the same class sub-folders", concept="eval")
    mode: Literal["finetune", "linear"] = option("finetune", help="fine-tune the whole network or a linear probe")
    epochs: int = option(10, help="training epochs")
    batch_size: int = option(64, help="images a batch")
    lr: float | None = option(None, help="AdamW learning rate (default 1e-4 finetune, 1e-3 linear)")
    weight_decay: float | None = option(None, help="weight decay (default 0.05 finetune, 0 linear)")
    img_size: int | None = option(None, help="input size in pixels (default: the pre-training size)")
    use_ema: bool = option(False, help="start from the checkpoint's EMA weights")
    workers: int = option(4, help="DataLoader workers")
    device: str = option("auto", help=_DEVICE_HELP, choices=_DEVICES)
    amp: Amp = option("auto", help=_PRECISION_HELP, concept="precision", choices=_PRECISIONS)
    seed: int = option(0, help="seed")
    out: str | None = option(None, help="where transfer.jsonl goes (default: the checkpoint's run directory)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        for name, value in (("epochs", self.epochs), ("batch_size", self.batch_size)):
            if value < 1:
                raise PretrainError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.mode not in ("finetune", "linear"):
            raise PretrainError(f"--mode must be finetune or linear, got {self.mode!r}")
        self._check_device_and_precision("transfer")
