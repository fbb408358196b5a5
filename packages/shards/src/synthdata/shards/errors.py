"""Exceptions raised by synthdata.shards; each message names the input and the fix."""


class ShardError(Exception):
    """Base class for shard-contract errors."""


class SampleError(ShardError, ValueError):
    """A sample handed to a writer is malformed (bad key, missing field, wrong type)."""


class DatasetInfoError(ShardError):
    """``dataset.json`` is missing, unreadable or does not match the schema."""


class CorruptShardError(ShardError):
    """A shard is truncated, fails its checksum or holds an undecodable or partial sample."""


class OutputDirError(ShardError, OSError):
    """An output directory cannot be created or written."""


class StorageError(ShardError, OSError):
    """A location (local path or URL) cannot be read or written as asked: bad scheme, missing backend."""
