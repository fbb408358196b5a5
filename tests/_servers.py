"""Local servers for tests of remote locations: an S3-compatible store (moto) and a plain HTTP server.

Both listen on 127.0.0.1 on a free port, are started and stopped by the fixtures, and need no network.
Imported by ``tests/conftest.py``, so any test of the suite can ask for them:

``s3_server`` (function scope) yields an :class:`S3Server`: a fresh bucket on a moto server shared by the
session, with ``AWS_ENDPOINT_URL``, dummy ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` and
``AWS_DEFAULT_REGION`` set for the test (monkeypatch) and fsspec's filesystem cache cleared before and
after, so ``s3fs`` (and anything using botocore) talks to it::

    def test_x(s3_server, tmp_path):
        url = s3_server.url("data")            # s3://<bucket>/data
        s3_server.upload(tmp_path / "d", url)  # copy a local folder there

``http_server`` (function scope) yields an :class:`HttpServer` serving its ``root`` folder (a fresh
``tmp_path`` subfolder) with directory listings, which fsspec's ``HTTPFileSystem`` parses for ``ls``::

    def test_y(http_server):
        (http_server.root / "d").mkdir()
        url = http_server.url("d")             # http://127.0.0.1:<port>/d

Both need the dev dependencies ``moto[server]``, ``s3fs`` and ``aiohttp``; a test asking for one is skipped
if they are missing.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_bucket_ids = itertools.count()


def _clear_fsspec_cache() -> None:
    """fsspec caches filesystem instances by their arguments: drop them so new env settings apply."""
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec is a shards dependency
        return
    fsspec.AbstractFileSystem.clear_instance_cache()
    for cls in list(fsspec.registry.values()):
        clear = getattr(cls, "clear_instance_cache", None)
        if clear is not None:
            clear()


@dataclass(frozen=True)
class S3Server:
    """A bucket on the local moto server: ``endpoint`` (http://127.0.0.1:PORT) and ``bucket``."""

    endpoint: str
    bucket: str

    def url(self, path: str = "") -> str:
        """``s3://BUCKET/path``."""
        return f"s3://{self.bucket}/{path.lstrip('/')}".rstrip("/")

    def upload(self, local: Path, url: str) -> None:
        """Copy every file below the local folder ``local`` to the prefix ``url``."""
        import fsspec

        fs = fsspec.filesystem("s3")
        for path in sorted(p for p in Path(local).rglob("*") if p.is_file()):
            fs.put_file(str(path), f"{url.removeprefix('s3://')}/{path.relative_to(local).as_posix()}")

    def listing(self, url: str) -> list[str]:
        """Names of the objects directly below the prefix ``url``."""
        import fsspec

        fs = fsspec.filesystem("s3")
        fs.invalidate_cache()
        return sorted(p.rsplit("/", 1)[-1] for p in fs.ls(url.removeprefix("s3://"), detail=False))


@pytest.fixture(scope="session")
def _moto_endpoint() -> Iterator[str]:
    pytest.importorskip("moto.server", reason="needs moto[server] (a dev dependency)")
    pytest.importorskip("s3fs", reason="needs s3fs (a dev dependency)")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_server(_moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A fresh, empty bucket on the session's local S3-compatible server, with the environment to reach it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", _moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    _clear_fsspec_cache()
    import fsspec

    bucket = f"test-bucket-{next(_bucket_ids)}"
    fsspec.filesystem("s3").mkdir(bucket)
    try:
        yield S3Server(_moto_endpoint, bucket)
    finally:
        _clear_fsspec_cache()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class HttpServer:
    """A local HTTP server: ``base`` (http://127.0.0.1:PORT) serving the folder ``root``."""

    base: str
    root: Path

    def url(self, path: str = "") -> str:
        """``http://127.0.0.1:PORT/path`` for a path relative to ``root``."""
        return f"{self.base}/{path.lstrip('/')}".rstrip("/")


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    """An HTTP server with directory listings over a fresh folder, stopped after the test."""
    pytest.importorskip("aiohttp", reason="fsspec's HTTP backend needs aiohttp")
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _clear_fsspec_cache()
    try:
        yield HttpServer(f"http://127.0.0.1:{server.server_address[1]}", root)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        _clear_fsspec_cache()
