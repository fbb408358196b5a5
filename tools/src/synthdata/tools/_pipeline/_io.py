"""Atomic writes (temp file, fsync, rename) for the pipeline, from :mod:`synthdata.shards.atomic`.

That module imports neither webdataset nor torch, so checking a finished run stays fast: a rerun whose
stages are all done should take about a second.
"""

from __future__ import annotations

from synthdata.shards.atomic import atomic_write_bytes, atomic_write_json

__all__ = ["atomic_write_bytes", "atomic_write_json"]
