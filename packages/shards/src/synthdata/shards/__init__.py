"""synthdata.shards: the WebDataset shard contract shared by every stage.

Write with :class:`ShardWriter` (streaming, bounded shards) or :func:`write_shard` (one planned shard);
describe the directory with :func:`write_dataset_json` (and, just before it, :func:`write_interop_files` for
timm, wids and Hugging Face); resume with :func:`plan_resume`; read with
:func:`iter_samples` (tools) or :func:`wds_pipeline` (training); check with :func:`verify_dataset`.
See ``docs/shards.md`` for the format.

The names below are imported on first use (``lazy_loader``), so ``synthdata.shards.atomic`` and the other light
submodules load without webdataset and torch.
"""

from typing import TYPE_CHECKING

import lazy_loader

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

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submodules=[
        "adopt",
        "atomic",
        "dataset",
        "dataset_info",
        "demo",
        "encoding",
        "errors",
        "export",
        "identity",
        "interop",
        "layout",
        "options",
        "pipeline",
        "reader",
        "resume",
        "seeding",
        "sheet",
        "stats",
        "storage",
        "verify",
        "writer",
    ],
    submod_attrs={
        "adopt": ["IndexResult", "index_shards"],
        "dataset": ["ShardDataset", "ShardEntry"],
        "dataset_info": ["DatasetInfo", "read_dataset_json", "write_dataset_json"],
        "demo": ["demo_classes", "draw_demo_image", "imagefolder_dirname", "make_demo"],
        "encoding": ["decode_image", "encode_image"],
        "export": ["ExportResult", "export_imagefolder"],
        "errors": [
            "CorruptShardError",
            "DatasetInfoError",
            "OutputDirError",
            "SampleError",
            "ShardError",
            "StorageError",
        ],
        "interop": ["INTEROP_FILES", "InteropFiles", "write_interop_files"],
        "layout": ["DATASET_JSON", "shard_name", "sidecar_path"],
        "pipeline": ["ErrorCounter", "resolve_urls", "tar_samples", "wds_pipeline"],
        "reader": ["ReadSample", "ReadStats", "iter_samples", "list_shards"],
        "resume": ["ResumePlan", "is_complete", "plan_resume"],
        "seeding": ["WorkSplit", "item_seed", "work_split"],
        "sheet": ["contact_sheet", "group_by_class"],
        "stats": ["DatasetStats", "dataset_stats"],
        "verify": ["Problem", "VerifyReport", "verify_dataset"],
        "writer": ["Sample", "ShardInfo", "ShardWriter", "write_shard"],
    },
)

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
