"""synthdata.shards: the WebDataset shard contract shared by every stage.

Write with :class:`ShardWriter` (streaming, bounded shards) or :func:`write_shard` (one planned shard);
describe the directory with :func:`write_dataset_json` (and, just before it, :func:`write_interop_files` for
timm, wids and Hugging Face); resume with :func:`plan_resume`; read with
:func:`iter_samples` (tools) or :func:`wds_pipeline` (training); check with :func:`verify_dataset`.
See ``docs/shards.md`` for the format.

The names below are imported on first use (PEP 562), so ``synthdata.shards.atomic`` and the other light
submodules load without webdataset and torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthdata.shards.adopt import IndexResult, index_shards
    from synthdata.shards.dataset import ShardDataset, ShardEntry
    from synthdata.shards.dataset_info import DatasetInfo, read_dataset_json, write_dataset_json
    from synthdata.shards.demo import demo_classes, draw_demo_image, imagefolder_dirname, make_demo
    from synthdata.shards.encoding import decode_image, encode_image
    from synthdata.shards.errors import (
        CorruptShardError,
        DatasetInfoError,
        OutputDirError,
        SampleError,
        ShardError,
        StorageError,
    )
    from synthdata.shards.export import ExportResult, export_imagefolder
    from synthdata.shards.interop import INTEROP_FILES, InteropFiles, write_interop_files
    from synthdata.shards.layout import DATASET_JSON, shard_name, sidecar_path
    from synthdata.shards.pipeline import ErrorCounter, resolve_urls, tar_samples, wds_pipeline
    from synthdata.shards.reader import ReadSample, ReadStats, iter_samples, list_shards
    from synthdata.shards.resume import ResumePlan, is_complete, plan_resume
    from synthdata.shards.seeding import WorkSplit, item_seed, work_split
    from synthdata.shards.sheet import contact_sheet, group_by_class
    from synthdata.shards.stats import DatasetStats, dataset_stats
    from synthdata.shards.verify import Problem, VerifyReport, verify_dataset
    from synthdata.shards.writer import Sample, ShardInfo, ShardWriter, write_shard

_SOURCE: dict[str, str] = {
    "IndexResult": "adopt",
    "index_shards": "adopt",
    "ShardDataset": "dataset",
    "ShardEntry": "dataset",
    "DatasetInfo": "dataset_info",
    "read_dataset_json": "dataset_info",
    "write_dataset_json": "dataset_info",
    "demo_classes": "demo",
    "draw_demo_image": "demo",
    "imagefolder_dirname": "demo",
    "make_demo": "demo",
    "decode_image": "encoding",
    "encode_image": "encoding",
    "ExportResult": "export",
    "export_imagefolder": "export",
    "CorruptShardError": "errors",
    "DatasetInfoError": "errors",
    "OutputDirError": "errors",
    "SampleError": "errors",
    "ShardError": "errors",
    "StorageError": "errors",
    "INTEROP_FILES": "interop",
    "InteropFiles": "interop",
    "write_interop_files": "interop",
    "DATASET_JSON": "layout",
    "shard_name": "layout",
    "sidecar_path": "layout",
    "ErrorCounter": "pipeline",
    "resolve_urls": "pipeline",
    "tar_samples": "pipeline",
    "wds_pipeline": "pipeline",
    "ReadSample": "reader",
    "ReadStats": "reader",
    "iter_samples": "reader",
    "list_shards": "reader",
    "ResumePlan": "resume",
    "is_complete": "resume",
    "plan_resume": "resume",
    "WorkSplit": "seeding",
    "item_seed": "seeding",
    "work_split": "seeding",
    "contact_sheet": "sheet",
    "group_by_class": "sheet",
    "DatasetStats": "stats",
    "dataset_stats": "stats",
    "Problem": "verify",
    "VerifyReport": "verify",
    "verify_dataset": "verify",
    "Sample": "writer",
    "ShardInfo": "writer",
    "ShardWriter": "writer",
    "write_shard": "writer",
}
_SUBMODULES = frozenset(_SOURCE.values()) | {"atomic", "identity", "options", "storage"}

__all__ = [
    "DATASET_JSON",
    "INTEROP_FILES",
    "CorruptShardError",
    "DatasetInfo",
    "DatasetInfoError",
    "DatasetStats",
    "ErrorCounter",
    "ExportResult",
    "IndexResult",
    "InteropFiles",
    "OutputDirError",
    "Problem",
    "ReadSample",
    "ReadStats",
    "ResumePlan",
    "Sample",
    "SampleError",
    "ShardDataset",
    "ShardEntry",
    "ShardError",
    "ShardInfo",
    "ShardWriter",
    "StorageError",
    "VerifyReport",
    "WorkSplit",
    "contact_sheet",
    "dataset_stats",
    "decode_image",
    "demo_classes",
    "draw_demo_image",
    "encode_image",
    "export_imagefolder",
    "group_by_class",
    "imagefolder_dirname",
    "index_shards",
    "is_complete",
    "item_seed",
    "iter_samples",
    "list_shards",
    "make_demo",
    "plan_resume",
    "read_dataset_json",
    "resolve_urls",
    "shard_name",
    "sidecar_path",
    "tar_samples",
    "verify_dataset",
    "wds_pipeline",
    "work_split",
    "write_dataset_json",
    "write_interop_files",
    "write_shard",
]


def __getattr__(name: str) -> Any:
    module = _SOURCE.get(name)
    if module is None:
        if name in _SUBMODULES:  # ``synthdata.shards.writer`` after a bare ``import synthdata.shards``
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
