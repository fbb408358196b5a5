"""One tuning run, end to end: zero-shot head, features, training, evaluation, WiSE-FT, outputs."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_tensors

from synthdata.shards.atomic import first_missing_dir, holds_a_file
from synthdata.tune._io import append_jsonl, atomic_write_bytes, atomic_write_json, write_jsonl
from synthdata.tune.batchnorm import (
    batchnorm_state,
    calibrate_batchnorm,
    has_placeholder_statistics,
    load_batchnorm_state,
)
from synthdata.tune.checkpoint import Checkpoint
from synthdata.tune.config import TuneConfig
from synthdata.tune.data import DataError, ImageSet, load_image_set, sample_few_shot
from synthdata.tune.evaluate import Evaluation, evaluate_logits, save_confusion_png
from synthdata.tune.features import FeatureCache, encode_images
from synthdata.tune.head import interpolate_state, save_head, wise_head, zeroshot_head
from synthdata.tune.train import finetune_end_to_end, train_head_on_features

log = logging.getLogger(__name__)

RESULT_SCHEMA = "synthdata.tune-result/1"
RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "config.json"
TRAIN_LOG_FILE = "train_log.jsonl"
HEAD_FILE = "head.safetensors"
ZEROSHOT_HEAD_FILE = "zeroshot_head.safetensors"
ENCODER_FILE = "encoder.safetensors"
CONFUSION_FILE = "confusion.png"
CHECKPOINT_FILE = "checkpoint.pt"
BATCHNORM_FILE = "batchnorm.safetensors"

# Settings that do not change the trained weights, so a run may resume with other values for them.
_NOT_IN_RUN_ID = ("device", "wise_alphas", "feature_batch_size", "workers", "use_cache")


def _round(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(float(x), nd)


def _eval_json(ev: Evaluation) -> dict[str, Any]:
    return {
        "top1": _round(ev.top1),
        "mean_per_class": _round(ev.mean_per_class),
        "per_class": [_round(v) for v in ev.per_class],
        "count": ev.count,
    }


def run_tuning(
    cfg: TuneConfig,
    *,
    classnames: Sequence[str],
    templates: Sequence[str],
    eval_data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    train: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = (),
    few_shot: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    bundle=None,
    resume: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Tune a CLIP classifier on synthetic shards ``train`` (and ``cfg.shots`` real images per class from
    ``few_shot``), evaluate it on ``eval_data`` and write the outputs to ``out`` (see ``docs/tune.md``).

    ``cache_dir`` defaults to ``out/feature_cache`` (``cfg.use_cache=False``: no cache). ``bundle``: an
    already loaded :class:`synthdata.clip.ClipBundle` (else loaded from ``cfg``; random weights are drawn
    from ``cfg.seed``); end-to-end fine-tuning hands it back with its original weights (the tuned encoder
    is saved to ``out/encoder.safetensors``). Training state is saved to ``out/checkpoint.pt`` after every epoch;
    with ``resume`` (default) a run with the same settings, data, classes and model continues from it (and
    one that finished only re-evaluates), ``resume=False`` discards it. ``on_epoch(row)`` is called after
    each epoch with its log row. Returns the result record appended to ``out/results.jsonl``.
    """
    from synthdata.clip import load_clip, logit_scale, zeroshot_weights

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    classnames, templates = list(classnames), list(templates)
    num_classes = len(classnames)
    if num_classes < 2:
        raise DataError(f"need at least 2 classes, got {num_classes}")
    train = [Path(train)] if isinstance(train, (str, os.PathLike)) else [Path(t) for t in train]
    if not train and few_shot is None:
        raise DataError("nothing to train on: give synthetic shards (--train) and/or real few-shot data")
    if (few_shot is None) != (cfg.shots is None):
        raise DataError("few-shot training needs both the real data (--few-shot DIR) and --shots K")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a directory; choose another")
    cache_root = (
        (Path(cache_dir) if cache_dir is not None else out / "feature_cache") if cfg.use_cache else None
    )

    # Data first: a bad path or class mismatch should fail before a model is loaded.
    syn_set = load_image_set(train, num_classes) if train else None
    eval_set = load_image_set(eval_data, num_classes)
    real_set: ImageSet | None = None
    real_idx = None
    if few_shot is not None:
        assert cfg.shots is not None
        real_set = load_image_set(few_shot, num_classes)
        real_idx = sample_few_shot(real_set.labels, cfg.shots, cfg.seed, num_classes)

    t = time.perf_counter()
    if bundle is None:
        bundle = load_clip(
            cfg.model, cfg.pretrained, device=cfg.device, precision=cfg.precision, seed=cfg.seed
        )
    scale = logit_scale(bundle)
    zs_head = zeroshot_head(zeroshot_weights(bundle, classnames, templates), scale).eval()
    timings["load_model_s"] = time.perf_counter() - t

    # A random encoder's BatchNorm layers hold placeholder statistics that collapse its features; estimate
    # them from the training images first (a caller's bundle gets its own statistics back at the end).
    bn_info = None
    calibrate = cfg.bn_calibration > 0 and has_placeholder_statistics(bundle.model.visual)
    bn_original = batchnorm_state(bundle.model.visual) if calibrate else None
    # Only now, with the data checked and the model loaded: a bad input leaves no --out behind.
    created = first_missing_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        if calibrate:
            t = time.perf_counter()
            calib_set, calib_idx = (syn_set, None) if syn_set is not None else (real_set, real_idx)
            assert calib_set is not None
            bn_info = calibrate_batchnorm(
                bundle,
                calib_set,
                calib_idx,
                max_images=cfg.bn_calibration,
                seed=cfg.seed,
                batch_size=cfg.feature_batch_size,
                workers=cfg.workers,
            )
            stats = batchnorm_state(bundle.model.visual)
            atomic_write_bytes(
                out / BATCHNORM_FILE, save_tensors(stats, metadata={"kind": "batchnorm-statistics"})
            )
            timings["bn_calibration_s"] = time.perf_counter() - t

        cache = FeatureCache(bundle, cache_root, batch_size=cfg.feature_batch_size, workers=cfg.workers)
        cache_use: dict[str, str] = {}

        # 1. The zero-shot head on the real test set, before anything is trained.
        ev_feats = cache.get(eval_set)
        cache_use["eval"], timings["features_eval_s"] = ev_feats.cache, ev_feats.seconds
        with torch.no_grad():
            zs_logits_eval = zs_head(ev_feats.features)
        zs_eval = evaluate_logits(zs_logits_eval, ev_feats.labels, num_classes)
        log.info("zero-shot head: top-1 %.4f on %d test images", zs_eval.top1, zs_eval.count)

        # 2. Training features (and the zero-shot head's logits on them, the distillation teacher).
        syn = real = None
        syn_teacher = None
        if syn_set is not None:
            f = cache.get(syn_set)
            cache_use["train"], timings["features_train_s"] = f.cache, f.seconds
            with torch.no_grad():
                syn_teacher = zs_head(f.features)
            syn = (f.features, f.labels, syn_teacher)
        if real_set is not None and not cfg.finetune:
            f = cache.get(real_set, real_idx)
            cache_use["real"], timings["features_real_s"] = f.cache, f.seconds
            real = (f.features, f.labels)

        # 3. Train, resuming from the checkpoint of an interrupted run with the same identity.
        head = copy.deepcopy(zs_head)
        run_id = _run_id(cfg, bundle, cache.encoder, classnames, templates, syn_set, real_set, real_idx)
        checkpoint = Checkpoint(out / CHECKPOINT_FILE, run_id)
        if not resume:
            checkpoint.discard()
            (out / TRAIN_LOG_FILE).unlink(missing_ok=True)
        resumed_from = 0
        if checkpoint.path.is_file():
            state = checkpoint.load()
            resumed_from = int(state["epoch"]) if state is not None else 0

        def epoch_done(row: dict) -> None:
            append_jsonl(out / TRAIN_LOG_FILE, row)
            if on_epoch is not None:
                on_epoch(row)

        t = time.perf_counter()
        zs_visual_state = None
        if cfg.finetune:
            zs_visual_state = {k: v.detach().clone() for k, v in bundle.model.visual.state_dict().items()}
            real_images = real_labels = None
            if real_set is not None:
                pairs = [(im, y) for _, im, y in real_set.iter_images(real_idx)]
                real_images = [im for im, _ in pairs]
                real_labels = torch.as_tensor([y for _, y in pairs], dtype=torch.int64)
            train_log = finetune_end_to_end(
                bundle,
                head,
                cfg,
                syn_set=syn_set,
                syn_teacher=syn_teacher,
                real_images=real_images,
                real_labels=real_labels,
                checkpoint=checkpoint,
                on_epoch=epoch_done,
            )
        else:
            train_log = train_head_on_features(
                head,
                cfg,
                syn=syn,
                real=real,
                device=bundle.device,
                checkpoint=checkpoint,
                on_epoch=epoch_done,
            )
        write_jsonl(out / TRAIN_LOG_FILE, train_log)
        timings["train_s"] = time.perf_counter() - t
        head = head.cpu().eval()

        # 4. Evaluate the tuned head and the WiSE-FT sweep between the zero-shot and tuned weights.
        t = time.perf_counter()
        wise: dict[str, float] = {}
        if cfg.finetune:
            assert zs_visual_state is not None
            tuned_visual_state = {k: v.detach().clone() for k, v in bundle.model.visual.state_dict().items()}
            tuned_feats, _ = encode_images(
                bundle, eval_set, batch_size=cfg.feature_batch_size, workers=cfg.workers
            )
            with torch.no_grad():
                tuned_eval = evaluate_logits(head(tuned_feats), ev_feats.labels, num_classes)
            for alpha in cfg.wise_alphas:
                if alpha in (0.0, 1.0):
                    wise[str(alpha)] = zs_eval.top1 if alpha == 0.0 else tuned_eval.top1
                    continue
                bundle.model.visual.load_state_dict(
                    interpolate_state(zs_visual_state, tuned_visual_state, alpha)
                )
                feats, _ = encode_images(
                    bundle, eval_set, batch_size=cfg.feature_batch_size, workers=cfg.workers
                )
                with torch.no_grad():
                    wise[str(alpha)] = evaluate_logits(
                        wise_head(zs_head, head, alpha)(feats), ev_feats.labels, num_classes
                    ).top1
            # The bundle (perhaps the caller's) gets its frozen weights back; the tuned ones go to ENCODER_FILE.
            bundle.model.visual.load_state_dict(zs_visual_state)
        else:
            with torch.no_grad():
                tuned_logits = head(ev_feats.features)
            tuned_eval = evaluate_logits(tuned_logits, ev_feats.labels, num_classes)
            for alpha in cfg.wise_alphas:
                # The head is linear in its weights, so interpolating the logits is interpolating the weights.
                with torch.no_grad():
                    logits = (
                        torch.lerp(zs_logits_eval, tuned_logits, alpha)
                        if 0 < alpha < 1
                        else (zs_logits_eval if alpha == 0 else tuned_logits)
                    )
                wise[str(alpha)] = evaluate_logits(logits, ev_feats.labels, num_classes).top1
        timings["eval_s"] = time.perf_counter() - t
        best_alpha = max(wise, key=lambda a: (wise[a], -abs(float(a) - 0.5)))
        log.info(
            "tuned head: top-1 %.4f (zero-shot %.4f); WiSE-FT best alpha %s: %.4f",
            tuned_eval.top1,
            zs_eval.top1,
            best_alpha,
            wise[best_alpha],
        )

        # 5. Outputs.
        meta = {"model": bundle.name, "pretrained": str(bundle.pretrained), "logit_scale": f"{scale:.6f}"}
        save_head(
            zs_head, out / ZEROSHOT_HEAD_FILE, classnames=classnames, extra={**meta, "kind": "zero-shot"}
        )
        save_head(
            head,
            out / HEAD_FILE,
            classnames=classnames,
            extra={**meta, "kind": "finetuned" if cfg.finetune else "tuned"},
        )
        files = {
            "head": HEAD_FILE,
            "zeroshot_head": ZEROSHOT_HEAD_FILE,
            "confusion": CONFUSION_FILE,
            "config": CONFIG_FILE,
            "train_log": TRAIN_LOG_FILE,
            "checkpoint": CHECKPOINT_FILE,
        }
        if cfg.finetune:
            state = {k: v.detach().cpu().contiguous() for k, v in tuned_visual_state.items()}
            atomic_write_bytes(
                out / ENCODER_FILE, save_tensors(state, metadata={**meta, "kind": "image-encoder"})
            )
            files["encoder"] = ENCODER_FILE
        if bn_info is not None:
            files["batchnorm"] = BATCHNORM_FILE
        save_confusion_png(
            tuned_eval.confusion,
            classnames,
            out / CONFUSION_FILE,
            title=f"{bundle.name} tuned head: top-1 {100 * tuned_eval.top1:.2f}%",
        )
        data = {
            "train": None
            if syn_set is None
            else {
                "sources": [str(p) for p in syn_set.roots],
                "samples": len(syn_set),
                "class_counts": syn_set.class_counts(num_classes),
                "fingerprint": syn_set.fingerprint(),
            },
            "few_shot": None
            if real_set is None
            else {
                "source": str(real_set.roots[0]),
                "kind": real_set.kind,
                "shots": cfg.shots,
                "seed": cfg.seed,
                "samples": len(real_idx),
                "available": len(real_set),
                "fingerprint": real_set.fingerprint(),
            },
            "eval": {
                "source": str(eval_set.roots[0]),
                "kind": eval_set.kind,
                "samples": len(eval_set),
                "fingerprint": eval_set.fingerprint(),
            },
        }
        atomic_write_json(
            out / CONFIG_FILE,
            {
                "config": cfg.to_json(),
                "classnames": classnames,
                "templates": templates,
                "data": data,
                "cache_dir": str(cache_root) if cache_root else None,
            },
        )
        timings["total_s"] = time.perf_counter() - t_start
        record: dict[str, Any] = {
            "schema": RESULT_SCHEMA,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "setting": "few-shot" if cfg.few_shot else "zero-shot",
            "mode": "finetune" if cfg.finetune else "frozen",
            "model": bundle.name,
            "pretrained": str(bundle.pretrained),
            "classes": classnames,
            "num_templates": len(templates),
            "zeroshot_top1": _round(zs_eval.top1),
            "top1": _round(tuned_eval.top1),
            "mean_per_class": _round(tuned_eval.mean_per_class),
            "per_class_accuracy": [_round(v) for v in tuned_eval.per_class],
            "zeroshot_per_class_accuracy": [_round(v) for v in zs_eval.per_class],
            "confusion": tuned_eval.confusion.tolist(),
            "wise_ft": {a: _round(v) for a, v in wise.items()},
            "wise_ft_best": {"alpha": float(best_alpha), "top1": _round(wise[best_alpha])},
            "steps": train_log[-1]["step"] if train_log else 0,
            "resumed_from_epoch": resumed_from,
            "run_id": run_id,
            "final_train_loss": _round(train_log[-1]["loss"]) if train_log else None,
            "feature_cache": cache_use,
            "bn_calibration": bn_info,
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "data": data,
            "config": cfg.to_json(),
            "files": files,
        }
        append_jsonl(out / RESULTS_FILE, record)
        return record
    except BaseException:
        # A directory this run created and left without a file (no features cached, no epoch finished)
        # goes again; anything in it is kept for the rerun, and a directory that existed is never removed.
        if created is not None and not holds_a_file(created):
            shutil.rmtree(created, ignore_errors=True)
        raise
    finally:
        if bn_original is not None:
            load_batchnorm_state(bundle.model.visual, bn_original)


def _run_id(cfg, bundle, encoder, classnames, templates, syn_set, real_set, real_idx) -> str:
    """sha256 over everything that decides the trained weights (see :class:`Checkpoint`)."""
    config = {k: v for k, v in cfg.to_json().items() if k not in _NOT_IN_RUN_ID}
    identity = {
        "config": config,
        "model": bundle.name,
        "pretrained": str(bundle.pretrained),
        "dtype": str(bundle.dtype),
        "encoder_sha256": encoder,
        "classnames": list(classnames),
        "templates": list(templates),
        "train": syn_set.fingerprint() if syn_set is not None else None,
        "few_shot": real_set.fingerprint() if real_set is not None else None,
        "few_shot_indices": [int(i) for i in real_idx] if real_idx is not None else None,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
