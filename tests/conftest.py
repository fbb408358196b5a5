"""Shared fixtures for the whole suite."""

from __future__ import annotations

import pytest

# Local S3 (moto) and HTTP servers for tests of remote locations; see tests/_servers.py.
from _servers import _moto_endpoint, http_server, s3_server  # noqa: F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` when no CUDA device is present (they run on GPU machines)."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a workspace dependency
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
