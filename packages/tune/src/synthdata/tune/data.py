"""Image sets for tuning and evaluation: synthdata shard directories or torchvision ImageFolders.

An :class:`ImageSet` knows every sample's label up front (from the shard sidecars, or from the ImageFolder
file list), so few-shot sampling and cache keys need no image decoding. Images are decoded only by
:meth:`ImageSet.iter_images`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from synthdata.shards import DATASET_JSON, iter_samples, list_shards, read_dataset_json, sidecar_path


class DataError(ValueError):
    """An image set cannot be used as given (missing, empty, or its classes do not match)."""


@dataclass(slots=True)
class ImageSet:
    """Samples of one or more shard directories, or of one ImageFolder, with their labels.

    ``items`` holds ``(shard path, key)`` for shards or ``(file path, "")`` for an ImageFolder, in a fixed
    order (shard name order within each directory; ImageFolder's sorted order); ``labels[i]`` is the class
    index of ``items[i]``.
    """

    kind: Literal["shards", "imagefolder"]
    roots: list[Path]
    items: list[tuple[Path, str]]
    labels: np.ndarray
    classes: list[str] | None = None
    _fingerprint: str | None = None
    _positions: dict[tuple[Path, str], int] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def describe(self) -> str:
        return f"{self.kind}:{','.join(str(r) for r in self.roots)}"

    def fingerprint(self) -> str:
        """sha256 over the set's identity: shards -> every sidecar's bytes (they hold each tar's sha256,
        keys and labels); ImageFolder -> sorted relative paths, sizes and mtimes. Any change -> new value."""
        if self._fingerprint is None:
            digest = hashlib.sha256(f"{self.kind}\n".encode())
            if self.kind == "shards":
                for root in self.roots:
                    for shard in list_shards(root):
                        side = sidecar_path(shard)
                        digest.update(
                            f"{shard.name}\t{hashlib.sha256(side.read_bytes()).hexdigest()}\n".encode()
                        )
            else:
                root = self.roots[0]
                for path, _ in self.items:
                    st = path.stat()
                    rel = path.relative_to(root).as_posix()
                    digest.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def class_counts(self, num_classes: int) -> list[int]:
        return np.bincount(self.labels, minlength=num_classes).tolist()

    def iter_images(self, indices: Sequence[int] | None = None) -> Iterator[tuple[int, Image.Image, int]]:
        """Yield ``(index, RGB image, label)`` for ``indices`` (all by default), in ascending index order."""
        wanted = self._wanted(indices)
        for unit in self.work_units(wanted):
            yield from self.iter_unit(unit, wanted)

    def _wanted(self, indices: Sequence[int] | None) -> set[int] | None:
        return None if indices is None else {int(i) for i in indices}

    def work_units(self, wanted: set[int] | None, chunk: int = 64) -> list[object]:
        """Independent pieces of the set for parallel decoding, in index order: shard paths (a shard is
        read sequentially) or chunks of ImageFolder indices."""
        if self.kind == "imagefolder":
            idx = sorted(wanted) if wanted is not None else list(range(len(self.items)))
            return [idx[i : i + chunk] for i in range(0, len(idx), chunk)]
        shards = list(dict.fromkeys(p for p, _ in self.items))
        if wanted is not None:
            keep = {self.items[i][0] for i in wanted}
            shards = [s for s in shards if s in keep]
        return shards

    def iter_unit(self, unit: object, wanted: set[int] | None) -> Iterator[tuple[int, Image.Image, int]]:
        """The wanted samples of one work unit (see :meth:`work_units`)."""
        if self.kind == "imagefolder":
            for i in unit:  # type: ignore[union-attr]
                with Image.open(self.items[i][0]) as im:
                    yield i, im.convert("RGB"), int(self.labels[i])
            return
        if self._positions is None:
            self._positions = {(p, k): i for i, (p, k) in enumerate(self.items)}
        shard = Path(unit)  # type: ignore[arg-type]
        for sample in iter_samples([shard]):
            i = self._positions.get((shard, sample.key))
            if i is None:
                raise DataError(f"{shard.name}: sample {sample.key!r} is not listed in its sidecar")
            if wanted is None or i in wanted:
                yield i, sample.image, int(sample.cls)


class DecodedImages(torch.utils.data.IterableDataset):
    """``(index, transform(image), label)`` of an :class:`ImageSet`'s wanted samples, its work units split
    over DataLoader workers (so images decode in parallel); indices restore the order afterwards."""

    def __init__(self, image_set: ImageSet, indices: Sequence[int] | None, transform):
        self.image_set = image_set
        self.wanted = image_set._wanted(indices)
        self.units = image_set.work_units(self.wanted)
        self.transform = transform

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor, int]]:
        info = torch.utils.data.get_worker_info()
        units = self.units if info is None else self.units[info.id :: info.num_workers]
        for unit in units:
            for i, image, label in self.image_set.iter_unit(unit, self.wanted):
                yield i, self.transform(image), label


def image_loader(
    image_set: ImageSet,
    indices: Sequence[int] | None,
    transform,
    *,
    batch_size: int,
    workers: int = 0,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """Batches of ``(indices, transform(images), labels)`` over the wanted samples (:class:`DecodedImages`),
    decoded in ``workers`` DataLoader processes (at most one per work unit and per usable CPU). Batches
    come in the workers' interleaving; callers put the samples back in index order."""
    dataset = DecodedImages(image_set, indices, transform)
    workers = min(workers, len(dataset.units), _usable_cpus())
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, pin_memory=pin_memory
    )


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def is_shard_dir(path: str | os.PathLike[str]) -> bool:
    path = Path(path)
    return (path / DATASET_JSON).is_file() or any(path.glob("*.idx.json"))


def load_shards(directories: Sequence[str | os.PathLike[str]]) -> ImageSet:
    """An :class:`ImageSet` over the complete shards of ``directories`` (labels read from the sidecars).

    Several directories must share one class list (their ``dataset.json`` files, where present).
    """
    if not directories:
        raise DataError("no shard directory given")
    items: list[tuple[Path, str]] = []
    labels: list[int] = []
    classes: list[str] | None = None
    roots = [Path(d) for d in directories]
    for root in roots:
        if not root.is_dir():
            raise DataError(f"{root} is not a directory")
        if (root / DATASET_JSON).is_file():
            info = read_dataset_json(root)
            if classes is not None and info.classes != classes:
                raise DataError(f"{root}: its class list differs from {roots[0]}'s; tune on one class list")
            classes = classes or list(info.classes)
        shards = list_shards(root)
        if not shards:
            raise DataError(f"{root} holds no complete shards (no *.idx.json sidecars)")
        for shard in shards:
            try:
                side = json.loads(sidecar_path(shard).read_text(encoding="utf-8"))
                keys, cls = list(side["keys"]), [int(c) for c in side["classes"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{shard.name}: unreadable sidecar ({exc})") from exc
            if len(keys) != len(cls):
                raise DataError(f"{shard.name}: sidecar lists {len(keys)} keys but {len(cls)} labels")
            items.extend((shard, k) for k in keys)
            labels.extend(cls)
    if not items:
        raise DataError(f"{', '.join(map(str, roots))}: no samples")
    return ImageSet("shards", roots, items, np.asarray(labels, dtype=np.int64), classes)


def load_imagefolder(root: str | os.PathLike[str], num_classes: int | None = None) -> ImageSet:
    """An ImageFolder (``root/<class dir>/<image>``) as torchvision reads it: sorted directory names give the
    class indices. With ``num_classes``, the number of class directories must equal it."""
    from torchvision.datasets import ImageFolder

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a directory")
    dirs = sorted(d.name for d in os.scandir(root) if d.is_dir() and not d.name.startswith("."))
    if num_classes is not None and len(dirs) != num_classes:
        raise DataError(
            f"{root} has {len(dirs)} class folders but there are {num_classes} class names; an ImageFolder "
            "needs one folder per class, whose sorted names give the class indices "
            f"(found: {', '.join(dirs[:8])}{', ...' if len(dirs) > 8 else ''})"
        )
    try:
        folder = ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataError(f"{root}: not a usable ImageFolder ({exc})") from exc
    items = [(Path(p), "") for p, _ in folder.samples]
    labels = np.asarray([t for _, t in folder.samples], dtype=np.int64)
    return ImageSet("imagefolder", [root], items, labels, list(folder.classes))


def load_image_set(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], num_classes: int | None = None
) -> ImageSet:
    """Shards (directories with sidecars / ``dataset.json``) or an ImageFolder, by what ``source`` holds.

    Labels must lie in ``[0, num_classes)``; for shards with a ``dataset.json`` its class count must match.
    """
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not sources:
        raise DataError("no image set given")
    if all(is_shard_dir(s) for s in sources):
        image_set = load_shards(sources)
        if (
            num_classes is not None
            and image_set.classes is not None
            and len(image_set.classes) != num_classes
        ):
            raise DataError(
                f"{image_set.describe()} has {len(image_set.classes)} classes in its dataset.json but there are "
                f"{num_classes} class names"
            )
    elif len(sources) == 1:
        image_set = load_imagefolder(sources[0], num_classes)
    else:
        raise DataError(f"several sources must all be shard directories: {', '.join(map(str, sources))}")
    if (
        num_classes is not None
        and len(image_set)
        and (image_set.labels.min() < 0 or image_set.labels.max() >= num_classes)
    ):
        raise DataError(f"{image_set.describe()} has labels outside [0, {num_classes})")
    return image_set


def sample_few_shot(labels: np.ndarray, shots: int, seed: int, num_classes: int | None = None) -> np.ndarray:
    """``shots`` sample indices per class, drawn without replacement by ``seed``; sorted ascending.

    The same labels, shots and seed always give the same indices (numpy's PCG64 via ``default_rng``); every
    class gets its own stream, so adding a class does not change the others' picks.
    """
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    labels = np.asarray(labels)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    chosen = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) < shots:
            raise DataError(f"class {c} has {len(idx)} samples, fewer than --shots {shots}")
        rng = np.random.default_rng([seed, c])
        chosen.append(rng.choice(idx, size=shots, replace=False))
    return np.sort(np.concatenate(chosen))
