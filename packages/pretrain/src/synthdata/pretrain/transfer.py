"""Transfer a pre-training checkpoint to a real ImageFolder dataset: fine-tune or linear probe, report top-1."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import accuracy
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from synthdata.pretrain._dist import require_cuda
from synthdata.pretrain._models import amp_dtype, autocast, create_model, eval_transform, train_transform
from synthdata.pretrain.checkpoint import load_checkpoint
from synthdata.pretrain.config import PretrainError, TransferConfig
from synthdata.pretrain.data import cpus_per_process

log = logging.getLogger(__name__)

DEFAULT_LR = {"finetune": 1e-4, "linear": 1e-3}
DEFAULT_WD = {"finetune": 0.05, "linear": 0.0}


def _image_folder(path: str, transform: Any, flag: str) -> ImageFolder:
    if not Path(path).is_dir():
        raise PretrainError(
            f"{flag} {path}: no such directory (expected one sub-directory of images per class)"
        )
    if any(Path(path).glob("*.tar")):
        raise PretrainError(
            f"{flag} {path}: holds WebDataset shards; transfer reads an ImageFolder of real images "
            f"(synth-shards export {path} --imagefolder OUT writes one)"
        )
    try:
        return ImageFolder(path, transform=transform)
    except (FileNotFoundError, RuntimeError) as exc:
        raise PretrainError(f"{flag} {path}: {exc}") from exc


def _load_backbone(ckpt: dict[str, Any], use_ema: bool) -> dict[str, torch.Tensor]:
    if not use_ema:
        return ckpt["model"]
    ema = ckpt.get("ema")
    if ema is None:
        raise PretrainError("--use-ema: this checkpoint holds no EMA weights (pre-train with --ema)")
    return {k.removeprefix("module."): v for k, v in ema.items()}


def evaluate(
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    dtype: torch.dtype | None,
    num_classes: int,
) -> tuple[float, float]:
    """Top-1 and top-5 (top-k capped at the class count) accuracy in percent."""
    model.eval()
    k = min(5, num_classes)
    correct1 = correctk = 0.0
    n = 0
    with torch.inference_mode():
        for images, targets in loader:
            images, targets = images.to(device), targets.to(device)
            with autocast(device.type, dtype):
                logits = model(images)
            top1, topk = accuracy(logits.float(), targets, topk=(1, k))
            correct1 += top1.item() * len(targets) / 100
            correctk += topk.item() * len(targets) / 100
            n += len(targets)
    return 100 * correct1 / max(n, 1), 100 * correctk / max(n, 1)


def _device(cfg: TransferConfig) -> torch.device:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise PretrainError("transfer runs in a single process; launch it without torchrun")
    if cfg.device == "cuda":
        require_cuda()
    return torch.device(cfg.device)


def _datasets(cfg: TransferConfig, dcfg: dict[str, Any]) -> tuple[ImageFolder, ImageFolder]:
    """The train and eval folders, transformed for the pre-trained model (``dcfg``), with the same classes."""
    train_ds = _image_folder(cfg.train_dir, train_transform(dcfg, color_jitter=0.0), "--train")
    eval_ds = _image_folder(cfg.eval_dir, eval_transform(dcfg), "--eval")
    if train_ds.classes != eval_ds.classes:
        raise PretrainError(
            f"classes mismatch: --train has {len(train_ds.classes)} class folders {train_ds.classes[:4]}…, "
            f"--eval has {len(eval_ds.classes)} {eval_ds.classes[:4]}…; both need the same class folders"
        )
    return train_ds, eval_ds


def _model(cfg: TransferConfig, ckpt: dict[str, Any], img_size: int, num_classes: int) -> torch.nn.Module:
    """The pre-trained model with a fresh ``num_classes`` head (drawn from torch's generator)."""
    pre = ckpt["config"]
    model = create_model(pre["model"], int(ckpt["num_classes"]), int(pre["img_size"]), pre.get("drop_path"))
    model.load_state_dict(_load_backbone(ckpt, cfg.use_ema))
    if img_size != int(pre["img_size"]):
        cfgp = getattr(model, "pretrained_cfg", {}) or {}
        if cfgp.get("fixed_input_size", False):
            raise PretrainError(
                f"{pre['model']} was pre-trained at {pre['img_size']}px and has a fixed input size; "
                "drop --img-size"
            )
    model.reset_classifier(num_classes)
    return model


def _trainable(model: torch.nn.Module, mode: str) -> Any:
    """What the optimizer updates: the whole model, or (linear probe) the classifier alone."""
    if mode != "linear":
        return model
    head = model.get_classifier()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    return head


def _loaders(
    cfg: TransferConfig, train_ds: ImageFolder, eval_ds: ImageFolder, device: torch.device
) -> tuple[DataLoader, DataLoader]:
    workers = min(cfg.workers, cpus_per_process())
    train_loader = DataLoader(
        train_ds,
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(cfg.seed),
        drop_last=len(train_ds) > cfg.batch_size,
        pin_memory=device.type == "cuda",
    )
    eval_loader = DataLoader(eval_ds, batch_size=cfg.batch_size, shuffle=False, num_workers=workers)
    return train_loader, eval_loader


@dataclass(slots=True)
class _Tuning:
    """The model being transferred and what updates it."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None
    device: torch.device
    dtype: torch.dtype | None
    updates: int = 0

    def train_epoch(self, loader: DataLoader, linear: bool) -> float:
        """One pass over ``loader``; returns the mean training loss."""
        if linear:
            self.model.eval()  # frozen backbone: BatchNorm keeps the pre-trained statistics
        else:
            self.model.train()
        loss_sum, n = 0.0, 0
        for images, targets in loader:
            images, targets = images.to(self.device), targets.to(self.device)
            with autocast(self.device.type, self.dtype):
                loss = torch.nn.functional.cross_entropy(self.model(images), targets)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            self.updates += 1
            self.scheduler.step_update(num_updates=self.updates)
            loss_sum += loss.item()
            n += 1
        return loss_sum / max(n, 1)


def _epochs(
    cfg: TransferConfig, tuning: _Tuning, loaders: tuple[DataLoader, DataLoader], num_classes: int
) -> list[dict[str, Any]]:
    """Train ``cfg.epochs`` epochs, evaluating after each; the per-epoch records."""
    train_loader, eval_loader = loaders
    per_epoch: list[dict[str, Any]] = []
    for epoch in range(cfg.epochs):
        loss = tuning.train_epoch(train_loader, cfg.mode == "linear")
        top1, top5 = evaluate(tuning.model, eval_loader, tuning.device, tuning.dtype, num_classes)
        per_epoch.append({"epoch": epoch + 1, "train_loss": loss, "top1": top1, "top5": top5})
        log.info("transfer epoch %d/%d: loss %.4f, top-1 %.2f%%", epoch + 1, cfg.epochs, loss, top1)
    return per_epoch


def _write_result(cfg: TransferConfig, result: dict[str, Any]) -> Path:
    """Append ``result`` to ``transfer.jsonl`` in ``--out`` (default: the checkpoint's run directory)."""
    ckpt_dir = Path(cfg.ckpt).resolve().parent
    out = Path(cfg.out) if cfg.out else (ckpt_dir.parent if ckpt_dir.name == "checkpoints" else ckpt_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "transfer.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(result) + "\n")
    return out / "transfer.jsonl"


def transfer(cfg: TransferConfig) -> dict[str, Any]:
    """Fine-tune (all weights) or linear-probe (classifier only, frozen backbone incl. BatchNorm statistics)."""
    cfg.validate()
    device = _device(cfg)
    ckpt = load_checkpoint(cfg.ckpt)
    pre = ckpt["config"]
    img_size = cfg.img_size or int(pre["img_size"])
    train_ds, eval_ds = _datasets(cfg, {**ckpt["data_config"], "input_size": [3, img_size, img_size]})
    num_classes = len(train_ds.classes)

    torch.manual_seed(cfg.seed)
    model = _model(cfg, ckpt, img_size, num_classes)
    model.to(device)
    lr = cfg.lr if cfg.lr is not None else DEFAULT_LR[cfg.mode]
    wd = cfg.weight_decay if cfg.weight_decay is not None else DEFAULT_WD[cfg.mode]
    optimizer = create_optimizer_v2(_trainable(model, cfg.mode), opt="adamw", lr=lr, weight_decay=wd)
    loaders = _loaders(cfg, train_ds, eval_ds, device)
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched="cosine",
        num_epochs=cfg.epochs,
        step_on_epochs=False,
        updates_per_epoch=len(loaders[0]),
    )
    dtype = amp_dtype(cfg.amp_dtype)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    t0 = time.perf_counter()
    per_epoch = _epochs(cfg, _Tuning(model, optimizer, scheduler, scaler, device, dtype), loaders, num_classes)

    result = {
        "event": "transfer",
        "time": round(time.time(), 3),
        "ckpt": str(cfg.ckpt),
        "ckpt_epoch": int(ckpt["epoch"]),
        "model": pre["model"],
        "mode": cfg.mode,
        "use_ema": cfg.use_ema,
        "epochs": cfg.epochs,
        "lr": lr,
        "weight_decay": wd,
        "img_size": img_size,
        "train_dir": str(cfg.train_dir),
        "eval_dir": str(cfg.eval_dir),
        "num_classes": num_classes,
        "train_images": len(train_ds),
        "eval_images": len(eval_ds),
        "top1": per_epoch[-1]["top1"],
        "top5": per_epoch[-1]["top5"],
        "best_top1": max(r["top1"] for r in per_epoch),
        "per_epoch": per_epoch,
        "run_time_s": time.perf_counter() - t0,
    }
    result["written_to"] = str(_write_result(cfg, result))
    return result
