"""Check a shard directory against the contract and list every problem found."""

from __future__ import annotations

import os
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from synthdata.shards.atomic import TEMP_MARK, sha256_file
from synthdata.shards.dataset_info import read_dataset_json
from synthdata.shards.errors import CorruptShardError, DatasetInfoError
from synthdata.shards.layout import SIDECAR_SUFFIX, shard_for_sidecar
from synthdata.shards.reader import iter_tar_groups, parse_sample
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
    """What :func:`verify_dataset` found. ``ok`` when there are no problems (warnings do not count)."""

    directory: Path
    shards: int = 0
    samples: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_dataset(directory: str | os.PathLike[str], *, decode_images: bool = True) -> VerifyReport:
    """Verify ``dataset.json``, every shard against its sidecar, every sample, and key uniqueness."""
    directory = Path(directory)
    report = VerifyReport(directory)
    if not directory.is_dir():
        report.problems.append(Problem(str(directory), "missing", "not a directory"))
        return report
    classes: list[str] | None = None
    try:
        classes = read_dataset_json(directory).classes
    except DatasetInfoError as exc:
        report.problems.append(Problem("dataset.json", "schema error", str(exc)))

    tars = {p.name for p in directory.glob("*.tar") if not p.name.startswith(".")}
    sidecars = {
        shard_for_sidecar(p).name for p in directory.glob(f"*{SIDECAR_SUFFIX}") if not p.name.startswith(".")
    }
    for name in sorted(tars - sidecars):
        report.problems.append(
            Problem(name, "missing sidecar", "incomplete shard (no .idx.json); rerun the job")
        )
    for name in sorted(sidecars - tars):
        report.problems.append(Problem(name, "missing shard", "sidecar present but the tar is missing"))
    for tmp in sorted(directory.glob(f".*{TEMP_MARK}*")):
        report.warnings.append(
            Problem(tmp.name, "stale temp file", "left by an interrupted writer; a rerun removes it")
        )

    key_owner: dict[str, str] = {}
    duplicates: Counter[str] = Counter()
    for name in sorted(tars & sidecars):
        report.shards += 1
        _verify_shard(directory / name, classes, decode_images, report, key_owner, duplicates)
    for key, extra in sorted(duplicates.items()):
        report.problems.append(
            Problem(key_owner[key], "duplicate key", f"key {key!r} appears {extra + 1} times across shards")
        )
    return report


def _verify_shard(
    shard: Path,
    classes: list[str] | None,
    decode_images: bool,
    report: VerifyReport,
    key_owner: dict[str, str],
    duplicates: Counter[str],
) -> None:
    name = shard.name
    side = read_sidecar(shard)
    if side is None:
        report.problems.append(Problem(name, "bad sidecar", "the .idx.json is not valid JSON"))
        return
    if side.get("bytes") != shard.stat().st_size:
        report.problems.append(
            Problem(name, "size mismatch", f"{shard.stat().st_size} bytes, sidecar says {side.get('bytes')}")
        )
    if sha256_file(shard) != side.get("sha256"):
        report.problems.append(
            Problem(name, "checksum mismatch", "sha256 differs from the sidecar: corrupt shard")
        )
    keys: list[str] = []
    try:
        for key, members in iter_tar_groups(shard):
            keys.append(key)
            try:
                sample = parse_sample(key, members, name, decode=decode_images)
            except CorruptShardError as exc:
                kind = "undecodable image" if "undecodable" in str(exc) else "partial sample"
                report.problems.append(Problem(name, kind, str(exc).removeprefix(f"{name}: ")))
                continue
            if classes is not None and not 0 <= sample.cls < len(classes):
                report.problems.append(
                    Problem(
                        name,
                        "schema error",
                        f"sample {key!r} has class {sample.cls}, outside 0..{len(classes) - 1}",
                    )
                )
    except (tarfile.TarError, CorruptShardError, OSError, EOFError) as exc:
        report.problems.append(Problem(name, "unreadable tar", f"{exc} (truncated or corrupt)"))
    report.samples += len(keys)
    if keys != side.get("keys"):
        report.problems.append(
            Problem(name, "index mismatch", "keys in the tar differ from the sidecar's list")
        )
    if side.get("count") != len(side.get("keys", [])):
        report.problems.append(Problem(name, "index mismatch", "sidecar count differs from its key list"))
    for key in keys:
        if key in key_owner:
            duplicates[key] += 1
        else:
            key_owner[key] = name
