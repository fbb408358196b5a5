"""GLIDE model/diffusion options under their official names, so official configs map one to one."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "GlideOptions",
    "base_options",
    "options_from",
    "smoke_options",
    "upsample_options",
]


@dataclass(frozen=True)
class GlideOptions:
    """Every option of the official ``model_and_diffusion_defaults()`` (same names, same meaning).

    ``channel_mult`` ``""`` picks the official default for the image size; ``attention_resolutions`` are
    feature-map sizes (``"32,16,8"``); ``timestep_respacing`` ``""`` means all ``diffusion_steps``.
    """

    image_size: int = 64
    num_channels: int = 192
    num_res_blocks: int = 3
    channel_mult: str = ""
    num_heads: int = 1
    num_head_channels: int = 64
    num_heads_upsample: int = -1
    attention_resolutions: str = "32,16,8"
    dropout: float = 0.1
    text_ctx: int = 128
    xf_width: int = 512
    xf_layers: int = 16
    xf_heads: int = 8
    xf_final_ln: bool = True
    xf_padding: bool = True
    diffusion_steps: int = 1000
    noise_schedule: str = "squaredcos_cap_v2"
    timestep_respacing: str = ""
    use_scale_shift_norm: bool = True
    resblock_updown: bool = True
    use_fp16: bool = True
    cache_text_emb: bool = False
    inpaint: bool = False
    super_res: bool = False

    def replace(self, **changes: Any) -> GlideOptions:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def channel_mult_tuple(self) -> tuple[int, ...]:
        if self.channel_mult == "":
            defaults = {256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}
            if self.image_size not in defaults:
                raise ValueError(f"no default channel_mult for image_size {self.image_size}; give channel_mult")
            return defaults[self.image_size]
        mult = tuple(int(m) for m in self.channel_mult.split(","))
        if 2 ** (len(mult) + 2) != self.image_size:
            raise ValueError(
                f"channel_mult {self.channel_mult!r} has {len(mult)} levels; image_size {self.image_size} "
                f"needs {self.image_size.bit_length() - 3}"
            )
        return mult

    @property
    def attention_ds(self) -> tuple[int, ...]:
        """Downsampling factors at which attention is used (image_size // resolution)."""
        return tuple(self.image_size // int(r) for r in self.attention_resolutions.split(",") if r.strip())


_FIELDS = {f.name for f in dataclasses.fields(GlideOptions)}


def options_from(options: GlideOptions | Mapping[str, Any] | str | Path) -> GlideOptions:
    """A :class:`GlideOptions` from an instance, a dict of official options, a manifest/JSON file, or a
    ``{"options": {...}}`` mapping. Unknown keys raise ``ValueError`` (a typo must not pass silently)."""
    if isinstance(options, GlideOptions):
        return options
    if isinstance(options, str | Path):
        options = json.loads(Path(options).read_text())
    assert isinstance(options, Mapping)
    if "options" in options and isinstance(options["options"], Mapping):
        options = options["options"]
    unknown = sorted(set(options) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown GLIDE option(s): {', '.join(unknown)}")
    return GlideOptions(**dict(options))


def base_options(**changes: Any) -> GlideOptions:
    """The official 64 px text-conditional base model (``model_and_diffusion_defaults()``)."""
    return GlideOptions().replace(**changes)


def upsample_options(**changes: Any) -> GlideOptions:
    """The official 64 → 256 px upsampler (``model_and_diffusion_defaults_upsampler()``)."""
    return GlideOptions(
        image_size=256,
        num_res_blocks=2,
        noise_schedule="linear",
        super_res=True,
    ).replace(**changes)


def smoke_options(kind: Literal["base", "upsample"], **changes: Any) -> GlideOptions:
    """Tiny random models of the real architectures (as ``tiny_base``/``tiny_upsample`` in the reference)."""
    common = dict(
        num_channels=32,
        num_res_blocks=1,
        num_head_channels=16,
        dropout=0.0,
        xf_width=16,
        xf_heads=2,
        use_fp16=False,
    )
    if kind == "base":
        opts = base_options(channel_mult="1,2,2,2", xf_layers=2, timestep_respacing="10", **common)
    elif kind == "upsample":
        opts = upsample_options(channel_mult="1,1,1,1,1,1", xf_layers=1, timestep_respacing="fast27", **common)
    else:
        raise ValueError(f"kind must be 'base' or 'upsample', got {kind!r}")
    return opts.replace(**changes)
