"""A filter run's outputs: the kept samples as new shards, ``scores.jsonl``, ``report.json``, ``dataset.json``."""

from __future__ import annotations

import contextlib
import json
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthdata.filter._report import class_table
from synthdata.filter._types import SampleScore, ScoreResult
from synthdata.filter.layout import PRODUCER, SHARD_PREFIX
from synthdata.shards import (
    CorruptShardError,
    DatasetInfo,
    Sample,
    ShardDataset,
    ShardEntry,
    ShardWriter,
    storage,
    write_dataset_json,
)
from synthdata.shards.atomic import atomic_open
from synthdata.shards.encoding import decode_image
from synthdata.shards.reader import iter_tar_groups, iter_tar_stream, parse_sample


@dataclass(slots=True)
class Copied:
    """What the second pass over the input wrote, and the images it decoded for the contact sheets."""

    written: int
    shards: int
    images: dict[str, Any]
    problems: list[str]


def _filter_meta(s: SampleScore, rule: str, artifact: str) -> dict[str, Any]:
    return {
        "confidence": s.confidence,
        "top1": s.top1,
        "top1_confidence": s.top1_confidence,
        "clip_score": s.clip_score,
        "rule": rule,
        "model": artifact,
    }


def _groups(entry: ShardEntry) -> Iterator[tuple[str, dict[str, bytes]]]:
    """The member groups of one input shard: a local file, or a URL read once as a stream."""
    if not storage.is_url(entry.location):
        yield from iter_tar_groups(Path(entry.location))
        return
    with contextlib.closing(storage.open_stream(entry.location)) as stream:
        yield from iter_tar_stream(stream, entry.name)


def copy_kept(
    source: ShardDataset,
    out: Path,
    scores: dict[str, SampleScore],
    kept: set[str],
    want_images: set[str],
    *,
    rule: str,
    artifact: str,
    shard_size: int,
) -> Copied:
    """Second pass: copy the kept samples' original image bytes (no re-encoding) into new shards.

    Also decodes the few images the contact sheets need. Per-sample problems skip that sample only.
    """
    images: dict[str, Any] = {}
    problems: list[str] = []
    written = 0
    with ShardWriter(out, prefix=SHARD_PREFIX, max_count=shard_size) as writer:
        for entry in source.shards:
            try:
                for key, members in _groups(entry):
                    if key not in kept and key not in want_images:
                        continue
                    try:
                        sample = parse_sample(key, members, entry.name, decode=False)
                    except CorruptShardError as exc:
                        problems.append(str(exc))
                        continue
                    if key in want_images:
                        with contextlib.suppress(Exception):
                            images[key] = decode_image(sample.image)
                    if key in kept:
                        meta = dict(sample.meta)
                        meta["filter"] = _filter_meta(scores[key], rule, artifact)
                        writer.write(Sample(key, sample.image, sample.cls, meta, dict(sample.extra)))
                        written += 1
            except (tarfile.TarError, CorruptShardError, OSError, EOFError) as exc:
                problems.append(f"{entry.name}: unreadable tar ({exc})")
        shards = len(writer.close())
    return Copied(written, shards, images, problems)


def write_scores(path: Path, scores: list[SampleScore], classnames: Sequence[str]) -> None:
    """``scores.jsonl``: one line per sample, in the order given."""
    with atomic_open(path, "w") as fh:
        for s in scores:
            fh.write(json.dumps(s.to_json(classnames), sort_keys=True, allow_nan=False) + "\n")


def _where(location: str | Path) -> str:
    """A location as recorded: a local path made absolute, a URL as it is."""
    text = str(location)
    return text if storage.is_url(text) else str(Path(text).resolve())


def report_doc(
    source: str,
    out: Path,
    *,
    settings: dict[str, Any],
    result: ScoreResult,
    copied: Copied,
    classnames: Sequence[str],
    seconds: float,
    files: dict[str, str],
) -> dict[str, Any]:
    """What ``report.json`` holds: settings, totals, the per-class table, unreadable samples, timing, files."""
    return {
        "source": _where(source),
        "out": _where(out),
        "settings": settings,
        "totals": {
            "samples": len(result.scores) + len(result.corrupt),
            "scored": len(result.scores),
            "kept": copied.written,
            "dropped": len(result.scores) - copied.written,
            "unreadable": len(result.corrupt),
            "shards_written": copied.shards,
        },
        "classes": class_table(result.scores, result.corrupt, classnames),
        "unreadable": [{"key": s.key, "shard": s.shard, "error": s.error} for s in result.corrupt[:1000]],
        "reader_messages": (result.error_messages + copied.problems)[:100],
        "timing": {
            "total_seconds": seconds,
            "scoring_seconds": result.seconds,
            "images_scored_now": result.scored_now,
            "shards_from_checkpoints": result.shards_resumed,
            "text_seconds": result.text_seconds,
            "images_per_second": result.images_per_second,
        },
        "files": files,
    }


def write_dataset_info(
    source: ShardDataset,
    out: Path,
    classnames: Sequence[str],
    settings: dict[str, Any],
    source_note: dict[str, Any] | None,
) -> None:
    """``dataset.json``: the source's classes and config, with this run's settings under ``filter``."""
    src_info = source.info
    if src_info is not None:
        src_config, src_name, src_producer = dict(src_info.config), src_info.name, src_info.producer
    else:
        src_config, src_name, src_producer = {}, "", ""
    src_config.pop("filter", None)
    filter_config = {
        **settings,
        "source": _where(source.location),
        "source_name": src_name,
        "source_producer": src_producer,
        **(source_note or {}),
    }
    write_dataset_json(
        out,
        DatasetInfo(
            classes=list(classnames),
            name=src_name or "filtered",
            producer=PRODUCER,
            config={**src_config, "filter": filter_config},
        ),
    )
