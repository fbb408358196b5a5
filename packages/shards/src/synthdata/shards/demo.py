"""A small procedurally drawn dataset in which every class has its own colour and pattern.

For smoke-testing training and filtering set-ups: a tiny model learns it in a few epochs.
"""

from __future__ import annotations

import colorsys
import os
from pathlib import Path

import numpy as np

from synthdata.shards.atomic import atomic_write_bytes, ensure_writable_dir
from synthdata.shards.dataset import ShardDataset
from synthdata.shards.dataset_info import DatasetInfo, write_dataset_json
from synthdata.shards.encoding import encode_image
from synthdata.shards.interop import write_interop_files
from synthdata.shards.seeding import item_seed
from synthdata.shards.writer import Sample, ShardWriter

PATTERNS = ("stripes", "columns", "diagonals", "checks", "dots", "rings", "gradient")
HUES = (
    "red",
    "orange",
    "yellow",
    "lime",
    "green",
    "teal",
    "cyan",
    "azure",
    "blue",
    "violet",
    "magenta",
    "pink",
)


def demo_classes(num_classes: int) -> list[str]:
    """Class names ``"<colour> <pattern>"``; colour and pattern both change from one class to the next."""
    if num_classes < 1:
        raise ValueError(f"--classes must be >= 1, got {num_classes}")
    names = []
    for i in range(num_classes):
        name = f"{HUES[i % len(HUES)]} {PATTERNS[i % len(PATTERNS)]}"
        cycle = i // (len(HUES) * len(PATTERNS))
        names.append(name if cycle == 0 else f"{name} {cycle + 1}")
    return names


def draw_demo_image(class_index: int, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Draw one uint8 HxWx3 image of ``class_index`` with random phase, scale, shade and noise."""
    hue = (class_index % len(HUES)) / len(HUES)
    pattern = PATTERNS[class_index % len(PATTERNS)]
    fg = np.array(colorsys.hsv_to_rgb(hue, 0.9, rng.uniform(0.75, 1.0)))
    bg = np.array(colorsys.hsv_to_rgb((hue + 0.5) % 1.0, 0.25, rng.uniform(0.15, 0.35)))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    period = rng.uniform(0.16, 0.24)
    phase = rng.uniform(0, 1)
    if pattern == "stripes":
        mask = ((yy / period + phase) % 1) < 0.5
    elif pattern == "columns":
        mask = ((xx / period + phase) % 1) < 0.5
    elif pattern == "diagonals":
        mask = (((xx + yy) / period + phase) % 1) < 0.5
    elif pattern == "checks":
        mask = ((np.floor(xx / period + phase) + np.floor(yy / period + phase)) % 2) == 0
    elif pattern == "dots":
        cx, cy = (xx / period + phase) % 1 - 0.5, (yy / period + phase) % 1 - 0.5
        mask = cx**2 + cy**2 < 0.09
    elif pattern == "rings":
        cx, cy = rng.uniform(0.3, 0.7, size=2)
        mask = ((np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / period + phase) % 1) < 0.5
    else:  # gradient
        t = np.clip(xx * np.cos(phase * 6.28) + yy * np.sin(phase * 6.28), 0, 1)
        mask = t[..., None]
    mask = mask.astype(np.float32)
    if mask.ndim == 2:
        mask = mask[..., None]
    image = mask * fg + (1 - mask) * bg
    image = image + rng.normal(0, 0.03, size=image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def make_demo(
    directory: str | os.PathLike[str],
    *,
    classes: int,
    per_class: int,
    seed: int = 0,
    size: int = 64,
    image_format: str = "png",
    shard_size: int = 16,
    imagefolder: bool = False,
) -> Path:
    """Write a demo dataset: shards + ``dataset.json``, or with ``imagefolder`` a folder per class.

    Samples are interleaved over classes, so every shard holds several classes. Image folders are named
    ``NNN_colour_pattern`` so that sorted folder names give the class indices.
    """
    if per_class < 1:
        raise ValueError(f"--images-per-class must be >= 1, got {per_class}")
    names = demo_classes(classes)
    directory = ensure_writable_dir(Path(directory))
    config = {"classes": classes, "per_class": per_class, "seed": seed, "size": size, "demo": True}
    items = [(n, c) for n in range(per_class) for c in range(classes)]
    if imagefolder:
        for c, name in enumerate(names):
            ensure_writable_dir(directory / imagefolder_dirname(c, name))
        for n, c in items:
            rng = np.random.default_rng(item_seed(seed, f"demo-c{c:03d}-{n:05d}"))
            data, ext = encode_image(draw_demo_image(c, rng, size), image_format, None, "demo")
            atomic_write_bytes(directory / imagefolder_dirname(c, names[c]) / f"{n:05d}.{ext}", data)
        return directory
    with ShardWriter(directory, prefix="demo", max_count=shard_size, image_format=image_format) as writer:
        for n, c in items:
            key = f"demo-c{c:03d}-{n:05d}"
            rng = np.random.default_rng(item_seed(seed, key))
            writer.write(
                Sample(key, draw_demo_image(c, rng, size), c, {"class_name": names[c], "demo": True})
            )
    # the files timm, wids and Hugging Face look for: after the last sidecar, before dataset.json
    write_interop_files(ShardDataset.open(directory, read_info=False), classes=names, name="demo")
    write_dataset_json(
        directory, DatasetInfo(classes=names, name="demo", producer="synth-shards make-demo", config=config)
    )
    return directory


SLUG_CHARS = 100  # keeps a folder name far below the 255-byte limit of common file systems


def imagefolder_dirname(index: int, name: str, *, digits: int = 3) -> str:
    """A path-safe folder name for a class: the index (zero-padded to ``digits``), ``_``, then the name with
    every character but ASCII letters and digits as ``_``, outer ``_`` stripped, at most 100 characters.

    The index prefix keeps names unique, whatever the class names (``/``, ``..``, spaces, unicode), and
    sorted folder names give the class indices when ``digits`` covers the largest index.
    """
    slug = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in name).strip("_") or "class"
    slug = slug[:SLUG_CHARS].rstrip("_")
    return f"{index:0{digits}d}_{slug}"
