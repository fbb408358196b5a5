"""synthdata.tune: Classifier Tuning of CLIP (zero-shot and few-shot), soft-label distillation, WiSE-FT.

:func:`run_tuning` does a whole run (see ``docs/tune.md``); the pieces are public for reuse and tests:
:class:`TuneConfig` (the paper's recipe as defaults), :class:`ClassifierHead` / :func:`zeroshot_head`,
:func:`tuning_loss`, :func:`cosine_lr`, :class:`FeatureCache`, :func:`load_image_set`,
:func:`sample_few_shot`, :func:`calibrate_batchnorm`, :func:`evaluate_logits`, :func:`wise_head` and :class:`Checkpoint`. Class names and templates are
arguments; this package does not read dataset registries.

The names below are imported on first use (``lazy_loader``), so the config module loads without torch
(command lines answer ``--help`` at once).
"""

import lazy_loader

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "batchnorm": ["calibrate_batchnorm", "has_placeholder_statistics"],
        "checkpoint": ["Checkpoint", "ResumeError"],
        "config": ["DEFAULT_WISE_ALPHAS", "FEW_SHOT_LR", "FINETUNE_LR", "ZERO_SHOT_LR", "TuneConfig"],
        "data": [
            "DataError",
            "DecodedImages",
            "ImageSet",
            "load_image_set",
            "load_imagefolder",
            "load_shards",
            "sample_few_shot",
        ],
        "evaluate": ["Evaluation", "confusion_matrix", "evaluate_logits", "save_confusion_png"],
        "features": ["FeatureCache", "Features", "cache_key", "encode_images", "encoder_digest"],
        "head": [
            "ClassifierHead",
            "interpolate_state",
            "load_head",
            "save_head",
            "wise_head",
            "zeroshot_head",
        ],
        "losses": ["cross_entropy", "distillation_loss", "pseudo_labels", "tuning_loss"],
        "run": ["RESULTS_FILE", "run_tuning"],
        "schedule": ["cosine_lr", "cosine_scheduler"],
        "train": ["finetune_end_to_end", "train_head_on_features"],
    },
)

__all__ = [
    "DEFAULT_WISE_ALPHAS",
    "FEW_SHOT_LR",
    "FINETUNE_LR",
    "RESULTS_FILE",
    "ZERO_SHOT_LR",
    "Checkpoint",
    "ClassifierHead",
    "DataError",
    "DecodedImages",
    "Evaluation",
    "FeatureCache",
    "Features",
    "ImageSet",
    "ResumeError",
    "TuneConfig",
    "cache_key",
    "calibrate_batchnorm",
    "confusion_matrix",
    "cosine_lr",
    "cosine_scheduler",
    "cross_entropy",
    "distillation_loss",
    "encode_images",
    "encoder_digest",
    "evaluate_logits",
    "finetune_end_to_end",
    "has_placeholder_statistics",
    "interpolate_state",
    "load_head",
    "load_image_set",
    "load_imagefolder",
    "load_shards",
    "pseudo_labels",
    "run_tuning",
    "sample_few_shot",
    "save_confusion_png",
    "save_head",
    "train_head_on_features",
    "tuning_loss",
    "wise_head",
    "zeroshot_head",
]
