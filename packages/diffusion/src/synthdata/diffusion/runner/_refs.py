"""Real Guidance references: an ImageFolder of few-shot real images (one folder per class)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from synthdata.diffusion.runner.errors import GenerateError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_NUMBERED = re.compile(r"^(\d+)_")


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference image: its path relative to the folder root, file SHA-256 and pixels (H, W, 3 uint8)."""

    source: str
    sha256: str
    image: torch.Tensor


def _slug(name: str) -> str:
    return "".join(ch.lower() if ch.isascii() and ch.isalnum() else "_" for ch in name).strip("_")


def _class_of(folder: str, classes: Sequence[str]) -> int | None:
    """A folder's class: ``NNN_anything`` (as ``synth-shards make-demo --imagefolder`` writes), the exact
    class name, or its slug."""
    m = _NUMBERED.match(folder)
    if m and int(m.group(1)) < len(classes):
        return int(m.group(1))
    if folder in classes:
        return list(classes).index(folder)
    slugs = [_slug(c) for c in classes]
    return slugs.index(_slug(folder)) if _slug(folder) in slugs else None


#: The official code's reference size: ``torchvision.transforms.Resize(64, interpolation=BICUBIC)``.
OFFICIAL_SHORTER_SIDE = 64


def _center_crop(im: Image.Image) -> Image.Image:
    """The centre square of the image, at its own resolution (the pipeline resizes it to 64 px)."""
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return im.crop((left, top, left + s, top + s))


def _shorter_side(im: Image.Image, size: int = OFFICIAL_SHORTER_SIDE) -> Image.Image:
    """The whole image with its shorter side resized to ``size`` (bicubic, aspect kept, no crop), sized as
    torchvision's ``Resize(size)`` sizes it: the longer side is ``int(size * long / short)``."""
    w, h = im.size
    short, long = min(w, h), max(w, h)
    new_short, new_long = size, int(size * long / short)
    new = (new_short, new_long) if w <= h else (new_long, new_short)
    return im if new == (w, h) else im.resize(new, Image.BICUBIC)


_PREPROCESS = {"center-crop": _center_crop, "shorter-side-64": _shorter_side}


def reference_pixels(path: Path, preprocessing: str = "center-crop") -> torch.Tensor:
    """A reference image as RGB uint8 (H, W, 3), after ``preprocessing`` (``center-crop`` or
    ``shorter-side-64``); the pipeline resizes whatever is not 64x64 to 64x64 (bicubic)."""
    try:
        prepare = _PREPROCESS[preprocessing]
    except KeyError:
        raise GenerateError(
            f"reference preprocessing {preprocessing!r} is unknown; use {' or '.join(_PREPROCESS)}"
        ) from None
    try:
        with Image.open(path) as im:
            arr = np.asarray(prepare(im.convert("RGB")), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise GenerateError(f"reference image {path} cannot be read ({exc}); remove or replace it") from exc
    return torch.from_numpy(arr.copy())


def load_references(
    root: str | os.PathLike[str],
    classes: Sequence[str],
    shots: int,
    needed: Sequence[int],
    *,
    preprocessing: str = "center-crop",
) -> dict[int, list[Reference]]:
    """The first ``shots`` images (sorted by name) of each class in ``needed``, from ``root/<class folder>/``,
    as :func:`reference_pixels` prepares them."""
    root = Path(root)
    if not root.is_dir():
        raise GenerateError(
            f"--few-shot {root} is not a directory; give an ImageFolder (a folder per class)"
        )
    if shots < 1:
        raise GenerateError(f"--shots must be >= 1, got {shots}")
    folders: dict[int, Path] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        idx = _class_of(sub.name, classes)
        if idx is None:
            raise GenerateError(
                f"--few-shot folder {sub} matches no class; name it NNN_name, the class name or its slug"
            )
        if idx in folders:
            raise GenerateError(
                f"--few-shot folders {folders[idx].name} and {sub.name} are both class {idx}"
            )
        folders[idx] = sub
    refs: dict[int, list[Reference]] = {}
    for idx in sorted(set(needed)):
        if idx not in folders:
            raise GenerateError(
                f"--few-shot {root} has no folder for class {idx} ({classes[idx]!r}); "
                f"add {root}/{idx:03d}_{_slug(classes[idx]) or 'class'}/ with {shots} images"
            )
        files = sorted(
            p for p in folders[idx].iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if len(files) < shots:
            raise GenerateError(
                f"--few-shot folder {folders[idx]} has {len(files)} images but --shots is {shots}; "
                "add images or lower --shots"
            )
        refs[idx] = [
            Reference(
                p.relative_to(root).as_posix(),
                hashlib.sha256(p.read_bytes()).hexdigest(),
                reference_pixels(p, preprocessing),
            )
            for p in files[:shots]
        ]
    return refs


def scaled_start_step(paper_k: int, steps: int) -> int:
    """k is given for 100 respaced steps (the paper's setting); other respacings start at the same fraction
    of the schedule, at least one step."""
    if steps == 100:
        return paper_k
    return max(1, min(steps, round(paper_k * steps / 100)))
