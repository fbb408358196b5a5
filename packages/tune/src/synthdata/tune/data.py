"""Image sets for tuning and evaluation: synthdata shard directories (local or directory URLs:
``s3://``, ``gs://``, ``http(s)://``) or local torchvision ImageFolders.

An :class:`ImageSet` knows every sample's label up front (from the shards' index,
:class:`synthdata.shards.ShardDataset`, or from the ImageFolder file list), so few-shot sampling and cache
keys need no image decoding. Images are decoded only by :meth:`ImageSet.iter_images`; a remote shard is
fetched and checked against its sidecar by :func:`synthdata.shards.iter_samples` in the process that
decodes it (each DataLoader worker resolves the shard's URL itself: no file system or open file is shared
across the fork).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from synthdata.shards import DATASET_JSON, ShardDataset, ShardEntry, ShardError, iter_samples, storage
from synthdata.shards.dataset import parse_sidecar
from synthdata.shards.reader import sidecar_location

log = logging.getLogger(__name__)

#: What a shard directory URL that holds no shards is told (ImageFolders are read from local disk only).
IMAGEFOLDER_LOCAL_ONLY = (
    "no synthdata shards there (no dataset.json, no *.idx.json sidecars); a URL must be a shard directory, "
    "an ImageFolder is read from a local directory only: copy it to local disk and pass that path"
)


class DataError(ValueError):
    """An image set cannot be used as given (missing, empty, or its classes do not match)."""


@dataclass(slots=True)
class ImageSet:
    """Samples of one or more shard directories, or of one ImageFolder, with their labels.

    ``items`` holds ``(ShardEntry, key)`` for shards (the entry's ``name`` is the shard's file name, its
    ``location`` the path or URL) or ``(file path, "")`` for an ImageFolder, in a fixed order (shard name
    order within each directory; ImageFolder's sorted order); ``labels[i]`` is the class index of
    ``items[i]``. ``roots`` are the sources as given (a ``Path`` for a local directory, the URL string for
    a remote one); ``datasets`` the opened shard directories (empty for an ImageFolder).
    """

    kind: Literal["shards", "imagefolder"]
    roots: list[Path | str]
    items: list[tuple[ShardEntry | Path, str]]
    labels: np.ndarray
    classes: list[str] | None = None
    datasets: tuple[ShardDataset, ...] = ()
    relabelled: tuple[int, ...] | None = None  # ImageFolder: class of each sorted folder, where not its position
    _fingerprint: str | None = None
    _positions: dict[tuple[str, str], int] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def describe(self) -> str:
        return f"{self.kind}:{','.join(str(r) for r in self.roots)}"

    def fingerprint(self) -> str:
        """sha256 over the set's identity: shards -> every shard's name and the sha256 of its sidecar's
        bytes (they hold each tar's sha256, keys and labels; a remote copy of the same shards gives the same
        value); ImageFolder -> sorted relative paths, sizes and mtimes. Any change -> new value."""
        if self._fingerprint is None:
            digest = hashlib.sha256(f"{self.kind}\n".encode())
            if self.kind == "shards":
                for dataset in self.datasets:
                    for shard, side in zip(dataset.shards, sidecar_digests(dataset), strict=True):
                        digest.update(f"{shard.name}\t{side}\n".encode())
            else:
                root = Path(self.roots[0])
                for path, _ in self.items:
                    assert isinstance(path, Path)
                    st = path.stat()
                    rel = path.relative_to(root).as_posix()
                    digest.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
                if self.relabelled is not None:  # folders matched to classes by name, not by sorted order
                    digest.update(f"classes\t{','.join(map(str, self.relabelled))}\n".encode())
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
        """Independent pieces of the set for parallel decoding, in index order: shards (each a
        :class:`~synthdata.shards.ShardEntry`, read sequentially) or chunks of ImageFolder indices."""
        if self.kind == "imagefolder":
            idx = sorted(wanted) if wanted is not None else list(range(len(self.items)))
            return [idx[i : i + chunk] for i in range(0, len(idx), chunk)]
        shards = [s for d in self.datasets for s in d.shards if s.count]
        if wanted is None:
            return list(shards)
        ordinal = np.repeat(np.arange(len(shards)), [s.count for s in shards])
        keep = set(ordinal[sorted(wanted)].tolist())
        return [s for n, s in enumerate(shards) if n in keep]

    def iter_unit(self, unit: object, wanted: set[int] | None) -> Iterator[tuple[int, Image.Image, int]]:
        """The wanted samples of one work unit (see :meth:`work_units`)."""
        if self.kind == "imagefolder":
            for i in unit:  # type: ignore[union-attr]
                with Image.open(self.items[i][0]) as im:  # type: ignore[arg-type]
                    yield i, im.convert("RGB"), int(self.labels[i])
            return
        if self._positions is None:
            self._positions = {(s.location, k): i for i, (s, k) in enumerate(self.items)}  # type: ignore[union-attr]
        assert isinstance(unit, ShardEntry)
        # The location, not an open file or file system: a DataLoader worker opens the shard itself.
        for sample in iter_samples([unit.location]):
            i = self._positions.get((unit.location, sample.key))
            if i is None:
                raise DataError(f"{unit.name}: sample {sample.key!r} is not listed in its sidecar")
            if wanted is None or i in wanted:
                yield i, sample.image, int(sample.cls)


def sidecar_digests(dataset: ShardDataset) -> list[str]:
    """The sha256 of each shard's sidecar bytes, in ``dataset.shards`` order (remote ones fetched in one
    batched request). Each sidecar read must still describe the indexed shard, else :class:`DataError`."""
    sources = [sidecar_location(s.location) for s in dataset.shards]
    blobs = storage.read_many(sources)
    digests = []
    for shard, source in zip(dataset.shards, sources, strict=True):
        data = blobs[source]
        if data is None:
            raise DataError(f"{source}: unreadable sidecar (gone since the index was read, or no access)")
        try:
            same = parse_sidecar(json.loads(data), source) == shard
        except (ValueError, ShardError):
            same = False
        if not same:
            raise DataError(f"{source}: changed while it was being read; rerun when the shards are complete")
        digests.append(hashlib.sha256(data).hexdigest())
    return digests


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
    """Whether the local directory ``path`` holds a ``dataset.json`` or sidecars (a URL is always taken
    as a shard directory, see :func:`load_image_set`)."""
    path = storage.local_path(path)
    return (path / DATASET_JSON).is_file() or any(path.glob("*.idx.json"))


def _named(root: Path | str, flag: str | None) -> str:
    return f"{flag} {root}" if flag else str(root)


def open_shards(root: Path | str, *, flag: str | None = None) -> ShardDataset:
    """The validated index (:class:`~synthdata.shards.ShardDataset`) of a shard directory or directory URL;
    any problem is one :class:`DataError` naming ``flag`` (the option that gave ``root``) when given."""
    name = _named(root, flag)
    try:
        dataset = ShardDataset.open(root, flag=flag or "shards")
    except FileNotFoundError as exc:
        raise DataError(str(exc) if storage.is_url(root) else f"{name} is not a directory") from exc
    except ShardError as exc:
        raise DataError(str(exc)) from exc
    except OSError as exc:  # a store or server that does not answer
        raise DataError(f"{name}: cannot read ({exc})") from exc
    if not dataset.shards:
        if storage.is_url(root) and dataset.info is None:
            raise DataError(f"{name}: {IMAGEFOLDER_LOCAL_ONLY}")
        raise DataError(f"{name} holds no complete shards (no *.idx.json sidecars)")
    return dataset


def load_shards(directories: Sequence[str | os.PathLike[str]], *, flag: str | None = None) -> ImageSet:
    """An :class:`ImageSet` over the complete shards of ``directories`` (local paths or directory URLs;
    labels from their sidecars, through :class:`~synthdata.shards.ShardDataset`).

    Several directories must share one class list (their ``dataset.json`` files, where present). Every
    sidecar is read here (the set's fingerprint too), so nothing about the index is left to fail later.
    """
    if not directories:
        raise DataError("no shard directory given")
    roots = [d if storage.is_url(d) else storage.local_path(d) for d in map(os.fspath, directories)]
    items: list[tuple[ShardEntry | Path, str]] = []
    labels: list[int] = []
    classes: list[str] | None = None
    datasets = []
    for root in roots:
        dataset = open_shards(root, flag=flag)
        if dataset.info is not None:
            if classes is not None and dataset.classes != classes:
                raise DataError(f"{root}: its class list differs from {roots[0]}'s; tune on one class list")
            classes = classes or dataset.classes
        for shard in dataset.shards:
            items.extend((shard, k) for k in shard.keys)
            labels.extend(shard.classes)
        datasets.append(dataset)
    if not items:
        raise DataError(f"{', '.join(map(str, roots))}: no samples")
    image_set = ImageSet("shards", roots, items, np.asarray(labels, dtype=np.int64), classes, tuple(datasets))
    image_set.fingerprint()
    return image_set


def load_imagefolder(
    root: str | os.PathLike[str],
    num_classes: int | None = None,
    *,
    classnames: Sequence[str] | None = None,
    aliases: Sequence[Sequence[str]] | None = None,
) -> ImageSet:
    """An ImageFolder (``root/<class dir>/<image>``). With ``classnames``, each folder's class is found by its
    name (:func:`synthdata.tune.classmatch.folder_classes`: the class names, their ``aliases`` such as a
    dataset's native folder names, or index names), a folder matching no class is a :class:`DataError`, and
    only folders that name no class at all keep torchvision's rule (sorted names give the indices). With
    ``num_classes``, the number of class directories must equal it."""
    from torchvision.datasets import ImageFolder

    if storage.is_url(root):
        raise DataError(f"{os.fspath(root)}: {IMAGEFOLDER_LOCAL_ONLY}")
    root = storage.local_path(root)
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
    classes = list(folder.classes)
    mapping = _folder_classes(root, classes, classnames, aliases)
    if mapping is None:
        return ImageSet("imagefolder", [root], items, labels, classes)
    if sorted(mapping) == list(range(len(mapping))):  # a folder for every class: list them in class order
        classes = [classes[mapping.index(c)] for c in range(len(mapping))]
    labels = np.asarray(mapping, dtype=np.int64)[labels]
    return ImageSet("imagefolder", [root], items, labels, classes, relabelled=tuple(mapping))


def _folder_classes(
    root: Path, folders: list[str], classnames: Sequence[str] | None, aliases: Sequence[Sequence[str]] | None
) -> list[int] | None:
    """Each sorted folder's class by name; None where that is its sorted position (or no folder names one)."""
    if classnames is None:
        return None
    from synthdata.tune.classmatch import FolderMismatch, folder_classes

    try:
        mapping = folder_classes(folders, classnames, aliases)
    except FolderMismatch as exc:
        raise DataError(f"{root}: {exc}") from exc
    if mapping is None:
        log.warning("%s: no folder name names a class; taking the classes in sorted folder order", root)
        return None
    return None if mapping == list(range(len(folders))) else mapping


def load_image_set(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    num_classes: int | None = None,
    *,
    flag: str | None = None,
    classnames: Sequence[str] | None = None,
    aliases: Sequence[Sequence[str]] | None = None,
) -> ImageSet:
    """Shards (directories or directory URLs with sidecars / ``dataset.json``) or a local ImageFolder, by
    what ``source`` holds; a URL must be a shard directory. ``flag`` names the option in errors;
    ``classnames`` and ``aliases`` match an ImageFolder's folders to classes (:func:`load_imagefolder`).

    Labels must lie in ``[0, num_classes)``; for shards with a ``dataset.json`` its class count must match.
    """
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not sources:
        raise DataError("no image set given")
    if all(storage.is_url(s) or is_shard_dir(s) for s in sources):
        image_set = load_shards(sources, flag=flag)
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
        image_set = load_imagefolder(sources[0], num_classes, classnames=classnames, aliases=aliases)
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
