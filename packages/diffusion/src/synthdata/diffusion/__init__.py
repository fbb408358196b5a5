"""synthdata.diffusion: GLIDE (64 px text-to-image base, 256 px upsampler), exact and checkpoint-compatible.

The public API; see ``docs/glide.md``. Modules: ``options``, ``model``, ``tokenizer``, ``schedule``,
``sampling``, ``checkpoints``, ``pipeline``, ``reference``.

The names below are imported on first use (``lazy_loader``), so the config module loads without torch
(command lines answer ``--help`` at once).
"""

import lazy_loader

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "checkpoints": ["CheckpointError", "load_checkpoint", "resolve_checkpoint"],
        "model": ["create_model"],
        "options": ["GlideOptions", "base_options", "options_from", "smoke_options", "upsample_options"],
        "pipeline": ["GlidePipeline"],
        "sampling": ["REAL_GUIDANCE_STEPS", "real_guidance_start_step"],
        "schedule": ["create_diffusion"],
        "tokenizer": ["get_tokenizer"],
    },
)

__all__ = [
    "REAL_GUIDANCE_STEPS",
    "CheckpointError",
    "GlideOptions",
    "GlidePipeline",
    "base_options",
    "create_diffusion",
    "create_model",
    "get_tokenizer",
    "load_checkpoint",
    "options_from",
    "real_guidance_start_step",
    "resolve_checkpoint",
    "smoke_options",
    "upsample_options",
]
