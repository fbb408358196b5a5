"""synthdata.shards: the WebDataset shard contract shared by every stage.

Write with :class:`ShardWriter` (streaming, bounded shards) or :func:`write_shard` (one planned shard);
describe the directory with :func:`write_dataset_json`; resume with :func:`plan_resume`; read with
:func:`iter_samples` (tools) or :func:`wds_pipeline` (training); check with :func:`verify_dataset`.
See ``docs/shards.md`` for the format.
"""

from synthdata.shards.dataset_info import DatasetInfo, read_dataset_json, write_dataset_json
from synthdata.shards.demo import demo_classes, draw_demo_image, imagefolder_dirname, make_demo
from synthdata.shards.encoding import decode_image, encode_image
from synthdata.shards.errors import (
    CorruptShardError,
    DatasetInfoError,
    OutputDirError,
    SampleError,
    ShardError,
)
from synthdata.shards.layout import DATASET_JSON, shard_name, sidecar_path
from synthdata.shards.pipeline import ErrorCounter, resolve_urls, wds_pipeline
from synthdata.shards.reader import ReadSample, ReadStats, iter_samples, list_shards
from synthdata.shards.resume import ResumePlan, is_complete, plan_resume
from synthdata.shards.seeding import WorkSplit, item_seed, work_split
from synthdata.shards.sheet import contact_sheet, group_by_class
from synthdata.shards.stats import DatasetStats, dataset_stats
from synthdata.shards.verify import Problem, VerifyReport, verify_dataset
from synthdata.shards.writer import Sample, ShardInfo, ShardWriter, write_shard

__all__ = [
    "DATASET_JSON",
    "CorruptShardError",
    "DatasetInfo",
    "DatasetInfoError",
    "DatasetStats",
    "ErrorCounter",
    "OutputDirError",
    "Problem",
    "ReadSample",
    "ReadStats",
    "ResumePlan",
    "Sample",
    "SampleError",
    "ShardError",
    "ShardInfo",
    "ShardWriter",
    "VerifyReport",
    "WorkSplit",
    "contact_sheet",
    "dataset_stats",
    "decode_image",
    "demo_classes",
    "draw_demo_image",
    "encode_image",
    "group_by_class",
    "imagefolder_dirname",
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
    "verify_dataset",
    "wds_pipeline",
    "work_split",
    "write_dataset_json",
    "write_shard",
]
