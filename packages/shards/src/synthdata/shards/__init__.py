"""synthdata.shards: the WebDataset shard contract shared by every stage."""

from synthdata.shards.seeding import WorkSplit, item_seed, work_split

__all__ = ["WorkSplit", "item_seed", "work_split"]
