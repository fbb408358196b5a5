"""synthdata.clip: shared CLIP plumbing (model loading, zero-shot heads, features).

Load with :func:`load_clip` (open_clip architecture name and pretrained tag; ``pretrained="none"`` for random
weights, ``synthdata-tiny-*`` for the tiny test architectures), then build a zero-shot head once with
:func:`zeroshot_weights` and encode batches with :func:`image_features`. See ``docs/clip.md``.

The names below are imported on first use (``lazy_loader``): ``DEFAULT_TEMPLATES`` needs no torch.
"""

import lazy_loader

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_features": ["image_features", "logit_scale", "text_features", "zeroshot_weights"],
        "_loading": [
            "TINY_PREFIX",
            "ClipBundle",
            "WeightsUnavailableError",
            "ensure_weights",
            "load_clip",
            "register_tiny_models",
        ],
        "_templates": ["DEFAULT_TEMPLATES"],
    },
)

__all__ = [
    "DEFAULT_TEMPLATES",
    "TINY_PREFIX",
    "ClipBundle",
    "WeightsUnavailableError",
    "ensure_weights",
    "image_features",
    "load_clip",
    "logit_scale",
    "register_tiny_models",
    "text_features",
    "zeroshot_weights",
]
