"""synthdata.clip: shared CLIP plumbing (model loading, zero-shot heads, features).

Load with :func:`load_clip` (open_clip architecture name and pretrained tag; ``pretrained="none"`` for random
weights, ``synthdata-tiny-*`` for the tiny test architectures), then build a zero-shot head once with
:func:`zeroshot_weights` and encode batches with :func:`image_features`. See ``docs/clip.md``.
"""

from synthdata.clip._features import image_features, logit_scale, text_features, zeroshot_weights
from synthdata.clip._loading import (
    TINY_PREFIX,
    ClipBundle,
    WeightsUnavailableError,
    ensure_weights,
    load_clip,
    register_tiny_models,
)
from synthdata.clip._templates import DEFAULT_TEMPLATES

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
