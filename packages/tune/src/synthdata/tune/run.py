"""One tuning run, end to end: :func:`run_tuning` checks its inputs (:func:`check_inputs`), then
:func:`prepare` (model, zero-shot head, features, checkpoint) → :meth:`TuningRun.train` →
:meth:`TuningRun.evaluate` (tuned head, WiSE-FT) → :meth:`TuningRun.write`, the whole run inside
:func:`synthdata.shards.atomic.removed_on_failure`."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import save as save_tensors

from synthdata.shards.atomic import removed_on_failure
from synthdata.shards.options import resolve_device
from synthdata.tune._io import append_jsonl, atomic_write_bytes, atomic_write_json, write_jsonl
from synthdata.tune.batchnorm import (
    batchnorm_state,
    calibrate_batchnorm,
    has_placeholder_statistics,
    load_batchnorm_state,
)
from synthdata.tune.checkpoint import Checkpoint
from synthdata.tune.config import TuneConfig
from synthdata.tune.data import ImageSet
from synthdata.tune.evaluate import Evaluation, evaluate_logits, save_confusion_png
from synthdata.tune.features import FeatureCache, Features, encode_images
from synthdata.tune.head import ClassifierHead, interpolate_state, save_head, wise_head, zeroshot_head
from synthdata.tune.inputs import Inputs, PathLike, check_inputs
from synthdata.tune.outputs import (
    BATCHNORM_FILE,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    CONFUSION_FILE,
    ENCODER_FILE,
    HEAD_FILE,
    RESULT_SCHEMA,
    RESULTS_FILE,
    TRAIN_LOG_FILE,
    ZEROSHOT_HEAD_FILE,
    config_json,
    data_summary,
    epoch_scores_record,
    output_files,
    scores_record,
    training_record,
)
from synthdata.tune.train import finetune_end_to_end, train_head_on_features

if TYPE_CHECKING:
    from synthdata.clip import ClipBundle

__all__ = [
    "RESULTS_FILE",
    "Inputs",
    "Scores",
    "Trained",
    "TuningRun",
    "check_inputs",
    "prepare",
    "run_tuning",
]

log = logging.getLogger(__name__)

# Settings that do not change the trained weights, so a run may resume with other values for them.
_NOT_IN_RUN_ID = ("device", "wise_alphas", "feature_batch_size", "workers", "use_cache", "eval_every_epoch")
# Settings added later, in the run id only when set, so runs that leave them unset keep their run id.
_IN_RUN_ID_WHEN_SET = ("frozen_few_shot_batch",)


def run_tuning(
    cfg: TuneConfig,
    *,
    out: PathLike,
    bundle: ClipBundle | None = None,
    resume: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    **sources: Any,
) -> dict[str, Any]:
    """Tune a CLIP classifier on synthetic shards ``train`` (and ``cfg.shots`` real images per class from
    ``few_shot``), evaluate it on ``eval_data`` and write the outputs to ``out`` (see ``docs/tune.md``).

    ``out`` and ``sources`` are :func:`check_inputs`' keywords, with its defaults: ``classnames``,
    ``templates``, ``eval_data`` (required), ``train``, ``few_shot``, ``cache_dir`` (default
    ``out/feature_cache``; ``cfg.use_cache=False``: no cache) and ``class_aliases`` (other names per class,
    e.g. native folder names, to which ImageFolder class folders are matched besides ``classnames``).
    ``bundle``: an already loaded :class:`synthdata.clip.ClipBundle` (else loaded from ``cfg``; random
    weights are drawn from ``cfg.seed``); end-to-end fine-tuning hands it back with its original weights
    (the tuned encoder is saved to ``out/encoder.safetensors``). Training state is saved to
    ``out/checkpoint.pt`` after every epoch; with ``resume`` (default) a run with the same settings, data,
    classes and model continues from it (and one that finished only re-evaluates), ``resume=False``
    discards it. ``on_epoch(row)`` is called after each epoch with its log row. Returns the result record
    appended to ``out/results.jsonl``.

    Every input is checked before ``out`` is created; a run that fails afterwards removes the directories
    it created when they hold no file (nothing cached, no epoch finished).
    """
    started = time.perf_counter()
    if cfg.device == "auto":  # recorded as the device the run used
        cfg = dataclasses.replace(cfg, device=resolve_device(cfg.device))
    with removed_on_failure(out):
        inputs = check_inputs(cfg, out=out, **sources)
        with prepare(cfg, inputs, bundle=bundle, resume=resume) as run:
            trained = run.train(on_epoch)
            return run.write(trained, run.evaluate(trained), started=started)


@dataclass(slots=True)
class CachedFeatures:
    """The frozen encoder's features (``encoder``: its weights' digest) of the test set, with the zero-shot
    head's logits and scores on it, and of the training sets: ``syn = (features, labels, zero-shot logits)``
    (the distillation teacher) and ``real = (features, labels)`` (frozen encoder only). ``use`` says per
    set whether the cache was hit, missed or off."""

    encoder: str
    eval: Features
    zs_logits: torch.Tensor
    zs_eval: Evaluation
    syn: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None
    real: tuple[torch.Tensor, torch.Tensor] | None
    use: dict[str, str]

    @property
    def syn_teacher(self) -> torch.Tensor | None:
        return self.syn[2] if self.syn is not None else None


@dataclass(slots=True)
class Trained:
    """The tuned head (on the CPU, eval mode), one log row per epoch, and with end-to-end fine-tuning the
    image encoder's weights before (``frozen_encoder``) and after (``tuned_encoder``) training."""

    head: ClassifierHead
    log: list[dict]
    frozen_encoder: dict[str, torch.Tensor] | None = None
    tuned_encoder: dict[str, torch.Tensor] | None = None


@dataclass(slots=True)
class Scores:
    """The tuned head on the test set, and WiSE-FT's top-1 by mixing coefficient (``str(alpha)``)."""

    tuned: Evaluation
    wise: dict[str, float]

    @property
    def best_alpha(self) -> str:
        """The best WiSE-FT mix; of equal ones, the nearest to 0.5."""
        return max(self.wise, key=lambda a: (self.wise[a], -abs(float(a) - 0.5)))


@contextlib.contextmanager
def prepare(
    cfg: TuneConfig, inputs: Inputs, *, bundle: ClipBundle | None = None, resume: bool = True
) -> Iterator[TuningRun]:
    """Load the model (unless ``bundle`` is given) and its zero-shot head; then, every input checked,
    create ``inputs.out``, estimate a random encoder's BatchNorm statistics, compute (or load) the
    features, score the zero-shot head on the test set and open the checkpoint (``resume=False``:
    discard it and the training log; another run's checkpoint raises
    :class:`~synthdata.tune.checkpoint.ResumeError`).

    Yields the prepared :class:`TuningRun`. Leaving the block puts estimated BatchNorm statistics back
    to the placeholders they replaced, so a caller's ``bundle`` comes back as it was.
    """
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if bundle is None:
        from synthdata.clip import load_clip

        bundle = load_clip(
            cfg.model, cfg.pretrained, device=cfg.device, precision=cfg.precision, seed=cfg.seed
        )
    scale, zs_head = _zeroshot_head(bundle, inputs)
    timings["load_model_s"] = time.perf_counter() - t
    # A random encoder's BatchNorm layers hold placeholder statistics that collapse its features; estimate
    # them from the training images first.
    visual = bundle.model.visual
    calibrate = cfg.bn_calibration > 0 and has_placeholder_statistics(visual)
    placeholders = batchnorm_state(visual) if calibrate else None
    # Only now, with the data checked and the model loaded: a bad input leaves no --out behind.
    inputs.out.mkdir(parents=True, exist_ok=True)
    try:
        bn_info = _calibrate_batchnorm(cfg, inputs, bundle, timings) if calibrate else None
        features = _cached_features(cfg, inputs, bundle, zs_head, timings)
        identity = _run_identity(cfg, bundle, features.encoder, inputs)
        checkpoint, resumed_from = _open_checkpoint(inputs.out, identity, resume=resume)
        yield TuningRun(
            cfg, inputs, bundle, scale, zs_head, features, bn_info, checkpoint, resumed_from, timings
        )
    finally:
        if placeholders is not None:
            load_batchnorm_state(visual, placeholders)


@dataclass(slots=True)
class TuningRun:
    """A prepared run (see :func:`prepare`): its inputs, the model and zero-shot head, the cached features,
    the BatchNorm estimate (``bn_info``, None when none was needed), the checkpoint with the epoch it
    resumes from, and the seconds each phase took."""

    cfg: TuneConfig
    inputs: Inputs
    bundle: ClipBundle
    logit_scale: float
    zs_head: ClassifierHead
    features: CachedFeatures
    bn_info: dict[str, Any] | None
    checkpoint: Checkpoint
    resumed_from: int
    timings: dict[str, float]

    def train(self, on_epoch: Callable[[dict], None] | None = None) -> Trained:
        """Tune a copy of the zero-shot head on the cached features (``cfg.finetune``: with the image
        encoder, end to end), continuing from the checkpoint. Each epoch's row is appended to the
        training log and passed to ``on_epoch``; at the end the log is rewritten whole."""
        log_path = self.inputs.out / TRAIN_LOG_FILE

        def epoch_done(row: dict) -> None:
            append_jsonl(log_path, row)
            if on_epoch is not None:
                on_epoch(row)

        head = copy.deepcopy(self.zs_head)
        t = time.perf_counter()
        if self.cfg.finetune:
            trained = self._finetune(head, epoch_done)
        else:
            rows = train_head_on_features(
                head,
                self.cfg,
                syn=self.features.syn,
                real=self.features.real,
                device=self.bundle.device,
                checkpoint=self.checkpoint,
                on_epoch=epoch_done,
                evaluate_epoch=self._epoch_scorer(head, self.features.eval.features),
            )
            trained = Trained(head, rows)
        write_jsonl(log_path, trained.log)
        self.timings["train_s"] = time.perf_counter() - t
        trained.head = head.cpu().eval()
        return trained

    def _finetune(self, head: ClassifierHead, on_epoch: Callable[[dict], None]) -> Trained:
        inputs, visual = self.inputs, self.bundle.model.visual
        frozen = _state_copy(visual)
        real_images = real_labels = None
        if inputs.real_set is not None:
            pairs = [(im, y) for _, im, y in inputs.real_set.iter_images(inputs.real_idx)]
            real_images = [im for im, _ in pairs]
            real_labels = torch.as_tensor([y for _, y in pairs], dtype=torch.int64)
        try:
            rows = finetune_end_to_end(
                self.bundle,
                head,
                self.cfg,
                syn_set=inputs.syn_set,
                syn_teacher=self.features.syn_teacher,
                real_images=real_images,
                real_labels=real_labels,
                checkpoint=self.checkpoint,
                on_epoch=on_epoch,
                evaluate_epoch=self._epoch_scorer(head, None),
            )
            tuned = _state_copy(visual)
        finally:
            # The bundle (perhaps the caller's) gets its frozen weights back, even from a failed run.
            visual.load_state_dict(frozen)
        return Trained(head, rows, frozen, tuned)

    def _epoch_scorer(self, head: ClassifierHead, features: torch.Tensor | None) -> Callable[[], float] | None:
        """With ``cfg.eval_every_epoch``, the test top-1 of ``head`` as it is now, on the cached test
        ``features`` (None: the test set encoded again by the encoder as it is now, for fine-tuning)."""
        if not self.cfg.eval_every_epoch:
            return None
        labels, num_classes = self.features.eval.labels, self.inputs.num_classes

        def score() -> float:
            feats = features if features is not None else self._eval_features()
            device = next(head.parameters()).device
            with torch.no_grad():
                logits = head(feats.to(device)).cpu()
            return evaluate_logits(logits, labels, num_classes).top1

        return score

    def evaluate(self, trained: Trained) -> Scores:
        """The tuned head on the test set and the WiSE-FT sweep between the zero-shot and tuned weights
        (``cfg.finetune``: the encoder's too, the test set encoded again for every mix)."""
        t = time.perf_counter()
        scores = self._finetuned_scores(trained) if self.cfg.finetune else self._frozen_scores(trained.head)
        self.timings["eval_s"] = time.perf_counter() - t
        best = scores.best_alpha
        log.info(
            "tuned head: top-1 %.4f (zero-shot %.4f); WiSE-FT best alpha %s: %.4f",
            scores.tuned.top1,
            self.features.zs_eval.top1,
            best,
            scores.wise[best],
        )
        return scores

    def _frozen_scores(self, head: ClassifierHead) -> Scores:
        f, num_classes = self.features, self.inputs.num_classes
        with torch.no_grad():
            tuned_logits = head(f.eval.features)
        tuned = evaluate_logits(tuned_logits, f.eval.labels, num_classes)
        wise: dict[str, float] = {}
        for alpha in self.cfg.wise_alphas:
            # The head is linear in its weights, so interpolating the logits is interpolating the weights.
            with torch.no_grad():
                logits = (
                    torch.lerp(f.zs_logits, tuned_logits, alpha)
                    if 0 < alpha < 1
                    else (f.zs_logits if alpha == 0 else tuned_logits)
                )
            wise[str(alpha)] = evaluate_logits(logits, f.eval.labels, num_classes).top1
        return Scores(tuned, wise)

    def _finetuned_scores(self, trained: Trained) -> Scores:
        frozen, tuned_state = trained.frozen_encoder, trained.tuned_encoder
        assert frozen is not None and tuned_state is not None
        labels, num_classes = self.features.eval.labels, self.inputs.num_classes
        try:
            with torch.no_grad():
                tuned = evaluate_logits(trained.head(self._eval_features(tuned_state)), labels, num_classes)
            wise: dict[str, float] = {}
            for alpha in self.cfg.wise_alphas:
                if alpha in (0.0, 1.0):
                    wise[str(alpha)] = self.features.zs_eval.top1 if alpha == 0.0 else tuned.top1
                    continue
                feats = self._eval_features(interpolate_state(frozen, tuned_state, alpha))
                with torch.no_grad():
                    logits = wise_head(self.zs_head, trained.head, alpha)(feats)
                wise[str(alpha)] = evaluate_logits(logits, labels, num_classes).top1
        finally:
            self.bundle.model.visual.load_state_dict(frozen)
        return Scores(tuned, wise)

    def _eval_features(self, visual_state: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The test set's features under the image encoder weights ``visual_state`` (left loaded; None: the
        weights it has now)."""
        if visual_state is not None:
            self.bundle.model.visual.load_state_dict(visual_state)
        feats, _ = encode_images(
            self.bundle,
            self.inputs.eval_set,
            batch_size=self.cfg.feature_batch_size,
            workers=self.cfg.workers,
        )
        return feats

    def write(self, trained: Trained, scores: Scores, *, started: float) -> dict[str, Any]:
        """Write the heads, the tuned encoder (``cfg.finetune``), the confusion matrix and ``config.json``,
        then append the run's record (``started``: its start, for ``timings.total_s``) to the results
        file and return it."""
        cfg, inputs, bundle, out = self.cfg, self.inputs, self.bundle, self.inputs.out
        meta = {
            "model": bundle.name,
            "pretrained": str(bundle.pretrained),
            "logit_scale": f"{self.logit_scale:.6f}",
        }
        kind = "finetuned" if cfg.finetune else "tuned"
        save_head(
            self.zs_head,
            out / ZEROSHOT_HEAD_FILE,
            classnames=inputs.classnames,
            extra={**meta, "kind": "zero-shot"},
        )
        save_head(trained.head, out / HEAD_FILE, classnames=inputs.classnames, extra={**meta, "kind": kind})
        if trained.tuned_encoder is not None:
            state = {k: v.detach().cpu().contiguous() for k, v in trained.tuned_encoder.items()}
            atomic_write_bytes(
                out / ENCODER_FILE, save_tensors(state, metadata={**meta, "kind": "image-encoder"})
            )
        save_confusion_png(
            scores.tuned.confusion,
            inputs.classnames,
            out / CONFUSION_FILE,
            title=f"{bundle.name} tuned head: top-1 {100 * scores.tuned.top1:.2f}%",
        )
        data = data_summary(cfg, inputs)
        atomic_write_json(out / CONFIG_FILE, config_json(cfg, inputs, data))
        self.timings["total_s"] = time.perf_counter() - started
        record: dict[str, Any] = {
            "schema": RESULT_SCHEMA,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "setting": "few-shot" if cfg.few_shot else "zero-shot",
            "mode": "finetune" if cfg.finetune else "frozen",
            "model": bundle.name,
            "pretrained": str(bundle.pretrained),
            "classes": inputs.classnames,
            "num_templates": len(inputs.templates),
            **scores_record(self.features.zs_eval, scores.tuned, scores.wise, scores.best_alpha),
            **epoch_scores_record(trained.log),
            **training_record(trained.log, resumed_from=self.resumed_from, run_id=self.checkpoint.run_id),
            "feature_cache": self.features.use,
            "bn_calibration": self.bn_info,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "data": data,
            "config": cfg.to_json(),
            "files": output_files(finetune=cfg.finetune, batchnorm=self.bn_info is not None),
        }
        append_jsonl(out / RESULTS_FILE, record)
        return record


def _zeroshot_head(bundle: ClipBundle, inputs: Inputs) -> tuple[float, ClassifierHead]:
    """CLIP's logit scale and the zero-shot head from the class names and templates."""
    from synthdata.clip import logit_scale, zeroshot_weights

    scale = logit_scale(bundle)
    return scale, zeroshot_head(zeroshot_weights(bundle, inputs.classnames, inputs.templates), scale).eval()


def _calibrate_batchnorm(
    cfg: TuneConfig, inputs: Inputs, bundle: ClipBundle, timings: dict[str, float]
) -> dict[str, Any]:
    """Estimate the encoder's BatchNorm statistics from the synthetic images (else the few-shot ones) and
    save them to the output directory."""
    t = time.perf_counter()
    image_set, indices = (
        (inputs.syn_set, None) if inputs.syn_set is not None else (inputs.real_set, inputs.real_idx)
    )
    assert image_set is not None
    info = calibrate_batchnorm(
        bundle,
        image_set,
        indices,
        max_images=cfg.bn_calibration,
        seed=cfg.seed,
        batch_size=cfg.feature_batch_size,
        workers=cfg.workers,
    )
    stats = batchnorm_state(bundle.model.visual)
    atomic_write_bytes(
        inputs.out / BATCHNORM_FILE, save_tensors(stats, metadata={"kind": "batchnorm-statistics"})
    )
    timings["bn_calibration_s"] = time.perf_counter() - t
    return info


def _cached_features(
    cfg: TuneConfig, inputs: Inputs, bundle: ClipBundle, zs_head: ClassifierHead, timings: dict[str, float]
) -> CachedFeatures:
    """The test set's features and the zero-shot head's scores on them (before anything is trained), then
    the training features (the few-shot ones only for a frozen encoder; fine-tuning encodes its images
    every step)."""
    cache = FeatureCache(bundle, inputs.cache_root, batch_size=cfg.feature_batch_size, workers=cfg.workers)
    use: dict[str, str] = {}

    def get(name: str, image_set: ImageSet, indices: np.ndarray | None = None) -> Features:
        f = cache.get(image_set, indices)
        use[name], timings[f"features_{name}_s"] = f.cache, f.seconds
        return f

    ev = get("eval", inputs.eval_set)
    with torch.no_grad():
        zs_logits = zs_head(ev.features)
    zs_eval = evaluate_logits(zs_logits, ev.labels, inputs.num_classes)
    log.info("zero-shot head: top-1 %.4f on %d test images", zs_eval.top1, zs_eval.count)
    syn = real = None
    if inputs.syn_set is not None:
        f = get("train", inputs.syn_set)
        with torch.no_grad():
            syn = (f.features, f.labels, zs_head(f.features))
    if inputs.real_set is not None and not cfg.finetune:
        f = get("real", inputs.real_set, inputs.real_idx)
        real = (f.features, f.labels)
    return CachedFeatures(cache.encoder, ev, zs_logits, zs_eval, syn, real, use)


def _open_checkpoint(out: Path, identity: dict[str, Any], *, resume: bool) -> tuple[Checkpoint, int]:
    """The run's checkpoint and the epoch it resumes from (0: none). ``resume=False`` discards the
    checkpoint and training log first; a checkpoint of another run raises ``ResumeError`` here, before
    any training."""
    checkpoint = Checkpoint(out / CHECKPOINT_FILE, identity)
    if not resume:
        checkpoint.discard()
        (out / TRAIN_LOG_FILE).unlink(missing_ok=True)
    state = checkpoint.load()
    return checkpoint, int(state["epoch"]) if state is not None else 0


def _run_identity(cfg: TuneConfig, bundle: ClipBundle, encoder: str, inputs: Inputs) -> dict[str, Any]:
    """Everything that decides the trained weights (its digest is the run id, see :class:`Checkpoint`)."""
    config = {
        k: v
        for k, v in cfg.to_json().items()
        if k not in _NOT_IN_RUN_ID and not (k in _IN_RUN_ID_WHEN_SET and v is None)
    }
    syn_set, real_set, real_idx = inputs.syn_set, inputs.real_set, inputs.real_idx
    identity = {
        "config": config,
        "model": bundle.name,
        "pretrained": str(bundle.pretrained),
        "dtype": str(bundle.dtype),
        "encoder_sha256": encoder,
        "classnames": list(inputs.classnames),
        "templates": list(inputs.templates),
        "train": syn_set.fingerprint() if syn_set is not None else None,
        "few_shot": real_set.fingerprint() if real_set is not None else None,
        "few_shot_indices": [int(i) for i in real_idx] if real_idx is not None else None,
    }
    return identity


def _state_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of ``module``'s state dict (same devices)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
