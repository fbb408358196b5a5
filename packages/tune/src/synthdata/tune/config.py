"""The tuning configuration: a typed dataclass whose defaults are the paper's Classifier Tuning recipe."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from synthdata.shards.options import option

#: Learning rates of the paper's recipe (AdamW): zero-shot CT, few-shot CT, and end-to-end fine-tuning.
ZERO_SHOT_LR = 2e-3
FEW_SHOT_LR = 1e-3
FINETUNE_LR = 1e-5

#: WiSE-FT mixing coefficients evaluated by default: 0 (zero-shot head) to 1 (tuned head) in steps of 0.1.
DEFAULT_WISE_ALPHAS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))


#: The official few-shot code's feature batch: with a frozen encoder its feature loaders take ``--batch-size``,
#: whose default is 128, for the synthetic and the real features alike (``src/datasets/common.py``).
PAPER_FEATURE_BATCH = 128

#: Named settings over the defaults of :class:`TuneConfig` (``default``). ``smoke``: a tiny random CLIP for
#: checking an install; ``paper``: the official code as its published commands run it: no warmup; few-shot
#: on frozen features, 128 synthetic + 128 real a step against a schedule sized for 512; the test set
#: scored every epoch and the best epoch reported beside the last (``docs/reproduce.md``).
RECIPES: dict[str, dict[str, Any]] = {
    "smoke": {"model": "synthdata-tiny-vit", "pretrained": "none"},
    "paper": {"warmup_epochs": 0.0, "frozen_few_shot_batch": PAPER_FEATURE_BATCH, "eval_every_epoch": True},
}


@dataclass(kw_only=True, slots=True)
class TuneConfig:
    """Everything that decides a tuning run's numbers (data paths and class names are passed separately).

    Defaults are the paper's recipe: AdamW, cosine schedule with linear warmup, gradient-norm clip 1.0,
    30 epochs, weight decay 0.1, 512 synthetic (+32 real) images a step; lr 2e-3 zero-shot, 1e-3 few-shot
    (``lr=None`` picks by setting, see :meth:`resolved_lr`); soft-label distillation weight 0.5 at T=2
    (``loss = (1 - sl) * CE + sl * SoftCE``, see :mod:`synthdata.tune.losses`). These are the official
    commands' settings as their README writes them; ``RECIPES["paper"]`` is the official code as it ran them
    (``docs/reproduce.md``).

    ``bn_calibration``: an image encoder whose BatchNorm layers never saw data (random weights) first gets
    their statistics estimated from up to this many training images (0: off); pretrained encoders and
    encoders without BatchNorm are never touched (see :mod:`synthdata.tune.batchnorm`).
    """

    model: str = option("RN50", help="open_clip architecture", concept="clip_model")
    pretrained: str = option(
        "openai", help="open_clip weights tag or file; 'none' for random weights", concept="clip_pretrained"
    )
    precision: str = option("fp32", help="precision of the frozen encoder", choices=("fp32", "fp16", "bf16"))
    device: str = option("auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    epochs: int = option(30, help="training epochs")
    lr: float | None = option(None, help="AdamW learning rate (default 2e-3 zero-shot, 1e-3 few-shot, 1e-5 with --finetune)")
    weight_decay: float = option(0.1, help="AdamW weight decay")
    warmup_epochs: float = option(
        1.0, help="linear warmup in epochs before the cosine decay; 0 = none, as the official commands run it"
    )
    grad_clip: float = option(1.0, help="gradient-norm clip; 0 = off")
    batch_size: int = option(512, help="synthetic images a step")
    real_batch_size: int = option(32, help="real images a step in the few-shot setting")
    frozen_few_shot_batch: int | None = option(
        None,
        help="few-shot on frozen features: N synthetic and N real a step, while the cosine schedule keeps the "
        "length --batch-size gives it and restarts each epoch where that length would (the official code: "
        "128 + 128 against a schedule sized for 512, so the rate climbs back at each epoch start and past the "
        "planned end); default: off",
        metavar="N",
    )
    syn_weight: float = option(1.0, help="synthetic loss weight")
    real_weight: float = option(1.0, help="real loss weight")
    sl: float = option(0.5, help="soft-label weight in [0, 1]: (1-sl)*CE + sl*SoftCE(zero-shot head); 0 = off")
    sl_temperature: float = option(2.0, help="distillation temperature")
    label_smoothing: float = option(0.0, help="label smoothing of the cross-entropy terms")
    pseudo_labels: bool = option(
        False, help="hard pseudo-labels (the zero-shot head's argmax) instead of its soft labels, weighted by --sl"
    )
    finetune: bool = option(False, help="train the image encoder end to end too (default: frozen, cached features)")
    shots: int | None = option(None, help="real images per class drawn from --few-shot by --seed")
    seed: int = option(0, help="shuffling, the few-shot draw and random weights")
    eval_every_epoch: bool = option(
        False,
        help="score the test set after every epoch and report the best epoch's top-1 beside the last one's, "
        "labelled as selected on the test set (what the official code reports)",
    )
    wise_alphas: tuple[float, ...] = option(
        help="WiSE-FT mixing coefficients to evaluate (0 = zero-shot, 1 = tuned)",
        metavar="A,B,...",
        default_factory=lambda: DEFAULT_WISE_ALPHAS,
    )
    feature_batch_size: int = option(128, help="images a feature-extraction batch")
    workers: int = option(4, help="processes decoding images for feature extraction; 0 = in-process")
    use_cache: bool = option(True, help="compute features without reading or writing a cache", negate=True)
    bn_calibration: int = option(
        256,
        help="an encoder whose BatchNorm layers never saw data (random weights) first gets their statistics "
        "estimated from up to N training images; pretrained encoders are untouched; 0 = off",
        metavar="N",
    )

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.lr is None or self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.warmup_epochs >= 0, f"warmup must be >= 0 epochs, got {self.warmup_epochs}"),
            (self.grad_clip >= 0, f"grad clip must be >= 0 (0 = off), got {self.grad_clip}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.real_batch_size >= 1, f"real batch size must be >= 1, got {self.real_batch_size}"),
            (
                self.frozen_few_shot_batch is None or self.frozen_few_shot_batch >= 1,
                f"--frozen-few-shot-batch must be >= 1, got {self.frozen_few_shot_batch}",
            ),
            (self.syn_weight >= 0 and self.real_weight >= 0, "loss weights must be >= 0"),
            (0 <= self.sl <= 1, f"--sl must lie in [0, 1], got {self.sl}"),
            (
                not self.pseudo_labels or self.sl > 0,
                "--pseudo-labels replaces the soft labels, so it needs --sl > 0 (its weight)",
            ),
            (self.sl_temperature > 0, f"--sl-temperature must be > 0, got {self.sl_temperature}"),
            (0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.shots is None or self.shots >= 1, f"--shots must be >= 1, got {self.shots}"),
            (self.feature_batch_size >= 1, "feature batch size must be >= 1"),
            (self.workers >= 0, f"--workers must be >= 0, got {self.workers}"),
            (self.bn_calibration >= 0, f"--bn-calibration must be >= 0 images, got {self.bn_calibration}"),
            (
                not self.finetune or self.precision == "fp32",
                "--finetune keeps fp32 weights for AdamW; use --precision fp32 with it",
            ),
            (
                all(0 <= a <= 1 for a in self.wise_alphas),
                f"WiSE-FT alphas must lie in [0, 1]: {self.wise_alphas}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.wise_alphas = tuple(sorted({float(a) for a in self.wise_alphas} | {0.0, 1.0}))

    @property
    def few_shot(self) -> bool:
        return self.shots is not None

    def feature_batches(self, num_syn: int, num_real: int) -> tuple[int, int, int | None]:
        """``(synthetic batch, real batch, schedule steps per epoch)`` of training on frozen features: the
        last is None (the schedule follows the steps run) unless ``frozen_few_shot_batch`` applies (both
        synthetic and real samples), where it is the steps ``batch_size`` would give."""
        if self.frozen_few_shot_batch is not None and num_syn and num_real:
            n = self.frozen_few_shot_batch
            return n, n, -(-num_syn // self.batch_size)
        return self.batch_size, self.real_batch_size, None

    def resolved_lr(self) -> float:
        """``lr`` if given; else 1e-5 end-to-end, 1e-3 few-shot, 2e-3 zero-shot (the paper's values)."""
        if self.lr is not None:
            return self.lr
        if self.finetune:
            return FINETUNE_LR
        return FEW_SHOT_LR if self.few_shot else ZERO_SHOT_LR

    def to_json(self) -> dict[str, Any]:
        obj = dataclasses.asdict(self)
        obj["wise_alphas"] = list(self.wise_alphas)
        obj["resolved_lr"] = self.resolved_lr()
        return obj
