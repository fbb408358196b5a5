"""Sample validation and image encoding for shards."""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

import numpy as np
from PIL import Image

from synthdata.shards.errors import SampleError

IMAGE_FORMATS = ("png", "jpg", "webp")
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp")
DEFAULT_QUALITY = {"jpg": 95, "webp": 95}
# webdataset splits a member name at the first dot into key and extension, so keys carry no dots.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$")
EXTRA_FIELD_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*(\.[a-z0-9]+)*$")
RESERVED_FIELDS = frozenset({"cls", "json", *IMAGE_EXTENSIONS})


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid sample key, else raise :class:`SampleError`."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise SampleError(
            f"sample key {key!r} is invalid: use 1-200 characters from [A-Za-z0-9_-], starting with a letter "
            "or digit (no dots, slashes or spaces; derive keys from ids, never from prompt text)"
        )
    return key


def validate_class_index(cls: object, key: str) -> int:
    """Return ``cls`` as an int if it is a non-negative integer."""
    if isinstance(cls, bool) or not isinstance(cls, (int, np.integer)) or cls < 0:
        raise SampleError(f"sample {key!r}: class index {cls!r} must be a non-negative integer")
    return int(cls)


def encode_metadata(meta: object, key: str) -> bytes:
    """Serialise a metadata dict as deterministic JSON (sorted keys, no NaN)."""
    if not isinstance(meta, dict):
        raise SampleError(f"sample {key!r}: metadata must be a dict, got {type(meta).__name__}")
    try:
        return json.dumps(meta, sort_keys=True, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise SampleError(
            f"sample {key!r}: metadata is not JSON-serialisable ({exc}); pass plain types"
        ) from exc


def normalise_format(image_format: str) -> str:
    """Map a user-facing format name to one of :data:`IMAGE_FORMATS`."""
    fmt = image_format.lower().lstrip(".")
    fmt = "jpg" if fmt == "jpeg" else fmt
    if fmt not in IMAGE_FORMATS:
        raise SampleError(
            f"image format {image_format!r} is not supported; choose one of {', '.join(IMAGE_FORMATS)}"
        )
    return fmt


def sniff_format(data: bytes) -> str | None:
    """Detect png/jpg/webp from magic bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def to_pil(image: object, key: str) -> Image.Image:
    """Convert a uint8 HWC/HW array or a PIL image to an RGB/L PIL image."""
    if isinstance(image, Image.Image):
        return image if image.mode in ("RGB", "L", "RGBA") else image.convert("RGB")
    if hasattr(image, "detach") and hasattr(image, "cpu"):  # a torch tensor, without importing torch here
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise SampleError(
                f"sample {key!r}: image array has dtype {image.dtype}; convert to uint8 in 0..255 (HWC) first"
            )
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4)):
            return Image.fromarray(np.ascontiguousarray(image))
        raise SampleError(
            f"sample {key!r}: image array shape {image.shape} is not HxW or HxWx3/4 (channels last)"
        )
    raise SampleError(
        f"sample {key!r}: image must be a uint8 array, a PIL image or encoded bytes, got {type(image).__name__}"
    )


def encode_image(image: object, image_format: str, quality: int | None, key: str) -> tuple[bytes, str]:
    """Encode ``image`` and return ``(bytes, extension)``; encoded bytes pass through unchanged."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        fmt = sniff_format(data)
        if fmt is None:
            raise SampleError(
                f"sample {key!r}: image bytes are not PNG, JPEG or WebP; pass an array or PIL image"
            )
        return data, fmt
    fmt = normalise_format(image_format)
    pil = to_pil(image, key)
    buf = io.BytesIO()
    if fmt == "png":
        pil.save(buf, format="PNG", compress_level=6)
    else:
        q = DEFAULT_QUALITY[fmt] if quality is None else quality
        if not 1 <= q <= 100:
            raise SampleError(f"image quality {q} is outside 1..100")
        if pil.mode == "RGBA":
            pil = pil.convert("RGB")
        pil.save(buf, format="JPEG" if fmt == "jpg" else "WEBP", quality=q)
    return buf.getvalue(), fmt


def decode_image(data: bytes) -> Image.Image:
    """Decode image bytes fully (so truncation is detected now, not later) into RGB."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.convert("RGB")


def encode_extra(name: str, value: Any, key: str) -> bytes:
    """Encode an extra field (bytes, str, or a JSON value for ``*.json`` names)."""
    if not EXTRA_FIELD_PATTERN.match(name) or name in RESERVED_FIELDS:
        raise SampleError(
            f"sample {key!r}: extra field name {name!r} is reserved or invalid; use e.g. 'scores.json'"
        )
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if name.endswith("json"):
        return encode_metadata(value, key) if isinstance(value, dict) else json.dumps(value).encode()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return str(value).encode()
    raise SampleError(f"sample {key!r}: extra field {name!r} has unsupported type {type(value).__name__}")
