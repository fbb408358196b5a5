"""Check a shard directory (local or a directory URL) against the contract and list every problem found."""

from __future__ import annotations

import os
import tarfile
from collections import Counter
from dataclasses import dataclass, field

from synthdata.shards import storage
from synthdata.shards.atomic import TEMP_MARK, HashingReader
from synthdata.shards.dataset_info import read_dataset_json
from synthdata.shards.errors import CorruptShardError, DatasetInfoError
from synthdata.shards.layout import SIDECAR_SUFFIX
from synthdata.shards.reader import iter_tar_stream, parse_sample, sidecar_label
from synthdata.shards.resume import read_sidecar


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: ``where`` is a file name (or ``dataset.json``); ``kind`` a short category."""

    where: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.detail}"


@dataclass(slots=True)
class VerifyReport:
    """What :func:`verify_dataset` found. ``ok`` when there are no problems (warnings do not count).

    ``directory`` is the location as given (a path or a URL, printed intact).
    """

    directory: str
    shards: int = 0
    samples: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_dataset(directory: str | os.PathLike[str], *, decode_images: bool = True) -> VerifyReport:
    """Verify ``dataset.json``, every shard against its sidecar, every sample, and key uniqueness.

    ``directory`` is a local directory or a directory URL (``s3://``, ``gs://``, ``http(s)://``); each tar
    is read once, front to back, for its size, SHA-256 and samples together. An unsupported URL scheme raises
    :class:`~synthdata.shards.errors.StorageError` before anything is read.
    """
    location = storage.check_location(directory, flag="verify")
    report = VerifyReport(location)
    if not storage.isdir(location):
        report.problems.append(Problem(location, "missing", "not a directory"))
        return report
    classes: list[str] | None = None
    try:
        classes = read_dataset_json(location).classes
    except DatasetInfoError as exc:
        report.problems.append(Problem("dataset.json", "schema error", str(exc)))

    names = storage.listdir(location)
    tars = {n for n in names if n.endswith(".tar") and not n.startswith(".")}
    sidecars = {
        n[: -len(SIDECAR_SUFFIX)] + ".tar"
        for n in names
        if n.endswith(SIDECAR_SUFFIX) and not n.startswith(".")
    }
    for name in sorted(tars - sidecars):
        report.problems.append(
            Problem(name, "missing sidecar", "incomplete shard (no .idx.json); rerun the job")
        )
    for name in sorted(sidecars - tars):
        report.problems.append(Problem(name, "missing shard", "sidecar present but the tar is missing"))
    for tmp in sorted(n for n in names if n.startswith(".") and TEMP_MARK in n):
        report.warnings.append(
            Problem(tmp, "stale temp file", "left by an interrupted writer; a rerun removes it")
        )

    key_owner: dict[str, str] = {}
    duplicates: Counter[str] = Counter()
    for name in sorted(tars & sidecars):
        report.shards += 1
        keys = _verify_shard(storage.join(location, name), classes, decode_images, report)
        for key in keys:
            if key in key_owner:
                duplicates[key] += 1
            else:
                key_owner[key] = name
    for key, extra in sorted(duplicates.items()):
        report.problems.append(
            Problem(key_owner[key], "duplicate key", f"key {key!r} appears {extra + 1} times across shards")
        )
    return report


@dataclass(slots=True)
class _ShardScan:
    """What one pass over a tar found: its keys, size and digest, and the sample-level problems."""

    keys: list[str] = field(default_factory=list)
    nbytes: int = 0
    sha256: str = ""
    problems: list[Problem] = field(default_factory=list)
    class_mismatches: list[str] = field(default_factory=list)


def _verify_shard(
    shard: str, classes: list[str] | None, decode_images: bool, report: VerifyReport
) -> list[str]:
    """Check one shard against its sidecar; add its problems to ``report`` and return its keys."""
    name = storage.basename(shard)
    side = read_sidecar(shard)
    if side is None:
        report.problems.append(Problem(name, "bad sidecar", "the .idx.json is not valid JSON"))
        return []
    scan = _scan(shard, side, classes, decode_images)
    if side.get("bytes") != scan.nbytes:
        report.problems.append(
            Problem(name, "size mismatch", f"{scan.nbytes} bytes, sidecar says {side.get('bytes')}")
        )
    if scan.sha256 != side.get("sha256"):
        report.problems.append(
            Problem(name, "checksum mismatch", "sha256 differs from the sidecar: corrupt shard")
        )
    report.problems.extend(scan.problems)
    report.samples += len(scan.keys)
    if scan.keys != side.get("keys"):
        report.problems.append(
            Problem(name, "index mismatch", "keys in the tar differ from the sidecar's list")
        )
    elif scan.class_mismatches:
        first = scan.class_mismatches[0]
        report.problems.append(
            Problem(
                name,
                "index mismatch",
                f"{len(scan.class_mismatches)} samples' cls differ from the sidecar's classes (first: {first})",
            )
        )
    if side.get("count") != len(side.get("keys", [])):
        report.problems.append(Problem(name, "index mismatch", "sidecar count differs from its key list"))
    return scan.keys


def _scan(shard: str, side: dict, classes: list[str] | None, decode_images: bool) -> _ShardScan:
    """Read the tar once: hash every byte and check every sample on the way."""
    name = storage.basename(shard)
    scan = _ShardScan()
    listed = side.get("classes") if isinstance(side.get("classes"), list) else []
    try:
        with storage.open_read(shard) as raw:
            reader = HashingReader(raw)
            try:
                for i, (key, members) in enumerate(iter_tar_stream(reader, name)):
                    scan.keys.append(key)
                    cls = _check_sample(
                        name, key, members, sidecar_label(side, i, key), classes, decode_images, scan
                    )
                    if cls is not None and i < len(listed) and listed[i] != cls:
                        scan.class_mismatches.append(f"{key!r}: {cls} in the tar, {listed[i]} in the sidecar")
            except (tarfile.TarError, CorruptShardError, OSError, EOFError) as exc:
                scan.problems.append(Problem(name, "unreadable tar", f"{exc} (truncated or corrupt)"))
            reader.drain()
            scan.nbytes, scan.sha256 = reader.bytes_read, reader.sha256.hexdigest()
    except OSError as exc:
        scan.problems.append(Problem(name, "unreadable tar", f"cannot read it ({exc})"))
    return scan


def _check_sample(
    name: str,
    key: str,
    members: dict[str, bytes],
    label: int | None,
    classes: list[str] | None,
    decode_images: bool,
    scan: _ShardScan,
) -> int | None:
    """Parse one sample; record its problems in ``scan``; return its class (None if unreadable)."""
    try:
        sample = parse_sample(key, members, name, decode=decode_images, cls=label)
    except CorruptShardError as exc:
        kind = "undecodable image" if "undecodable" in str(exc) else "partial sample"
        scan.problems.append(Problem(name, kind, str(exc).removeprefix(f"{name}: ")))
        return None
    if classes is not None and not 0 <= sample.cls < len(classes):
        scan.problems.append(
            Problem(
                name, "schema error", f"sample {key!r} has class {sample.cls}, outside 0..{len(classes) - 1}"
            )
        )
    return sample.cls
