"""Checkpoint resolution, resumable download, strict and safe loading."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
import torch

from synthdata.diffusion import checkpoints
from synthdata.diffusion.checkpoints import (
    Artifact,
    CheckpointError,
    download,
    load_checkpoint,
    load_state_dict,
    resolve_checkpoint,
)
from synthdata.diffusion.model import create_model
from synthdata.diffusion.options import smoke_options

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Evil:
    """Pickles to a call that would create a file when unpickled."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_malicious_pickle_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(1), "payload": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt"):
        load_state_dict(path)
    assert not marker.exists()
    with pytest.raises(CheckpointError):
        load_checkpoint(torch.nn.Linear(1, 1), path)
    assert not marker.exists()


def test_load_torch_and_safetensors_and_strict_mismatch(tmp_path):
    from safetensors.torch import save_file

    model = torch.nn.Linear(2, 3)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    save_file(model.state_dict(), str(tmp_path / "m.safetensors"))
    torch.save({"state_dict": model.state_dict()}, tmp_path / "wrapped.pt")
    for name in ("m.pt", "m.safetensors", "wrapped.pt"):
        other = torch.nn.Linear(2, 3)
        assert load_checkpoint(other, tmp_path / name) == tmp_path / name
        assert torch.equal(other.weight, model.weight)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(torch.nn.Linear(2, 4), tmp_path / "m.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="state dict"):
        load_state_dict(tmp_path / "list.pt")


def test_tiny_glide_round_trip_strict(tmp_path):
    model = create_model(smoke_options("base", xf_layers=1), seed=0)
    torch.save(model.state_dict(), tmp_path / "base.pt")
    other = create_model(smoke_options("base", xf_layers=1), seed=1)
    load_checkpoint(other, tmp_path / "base.pt")
    for (k, v), w in zip(model.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


# ------------------------------------------------------------------------------ resolution / download
class _Server:
    """A local HTTP server for PAYLOAD with Range support; ``cut`` makes it drop the connection early."""

    def __init__(self):
        self.ranges: list[str | None] = []
        self.cut: int | None = None
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = int(rng.split("=")[1].rstrip("-")) if rng else 0
                if start >= len(PAYLOAD):
                    self.send_response(416)
                    self.end_headers()
                    return
                body = PAYLOAD[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut is not None:
                    self.wfile.write(body[: outer.cut])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/base.pt"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _closed_port_url() -> str:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/base.pt"


def test_download_with_progress_and_atomic_rename(tmp_path, capsys):
    with _Server() as server:
        dest = download(server.url, tmp_path / "glide" / "base.pt", progress=True)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "glide" / "base.pt.part").exists()
    assert server.ranges == [None]
    assert "base.pt" in capsys.readouterr().err  # the tqdm bar


def test_download_resumes_a_partial_file(tmp_path):
    dest = tmp_path / "base.pt"
    (tmp_path / "base.pt.part").write_bytes(PAYLOAD[:1000])
    with _Server() as server:
        download(server.url, dest, progress=False)
    assert server.ranges == ["bytes=1000-"]
    assert dest.read_bytes() == PAYLOAD


def test_interrupted_download_keeps_part_and_resumes(tmp_path):
    dest = tmp_path / "base.pt"
    with _Server() as server:
        server.cut = 300_000
        with pytest.raises(CheckpointError, match="run again"):
            download(server.url, dest, progress=False)
        assert not dest.exists()
        part = tmp_path / "base.pt.part"
        assert 0 < part.stat().st_size < len(PAYLOAD)
        have = part.stat().st_size
        server.cut = None
        download(server.url, dest, progress=False)
        assert server.ranges[-1] == f"bytes={have}-"
    assert dest.read_bytes() == PAYLOAD


def test_download_checks_sha256(tmp_path):
    with _Server() as server, pytest.raises(CheckpointError, match="sha256"):
        download(server.url, tmp_path / "base.pt", progress=False, sha256="0" * 64)
    assert not (tmp_path / "base.pt").exists()


def test_offline_error_names_file_and_url(tmp_path, monkeypatch):
    url = _closed_port_url()
    monkeypatch.setitem(checkpoints.ARTIFACTS, "glide.base", Artifact("glide.base", "base.pt", url, "base"))
    with pytest.raises(CheckpointError) as info:
        resolve_checkpoint("glide.base", tmp_path, progress=False)
    assert "base.pt" in str(info.value) and url in str(info.value)
    assert f"put it at {tmp_path / 'glide' / 'base.pt'}" in str(info.value) and "--base-checkpoint" in str(info.value)
    with pytest.raises(CheckpointError) as info:
        resolve_checkpoint("base", tmp_path, download_missing=False)
    assert "base.pt" in str(info.value) and url in str(info.value)


def test_resolution_order(tmp_path, monkeypatch):
    local = tmp_path / "mine.pt"
    local.write_bytes(b"x")
    assert resolve_checkpoint(local) == local
    cached = tmp_path / "cache" / "glide" / "upsample.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert resolve_checkpoint("glide.upsample", tmp_path / "cache", download_missing=False) == cached
    monkeypatch.setenv("SYNTHDATA_CACHE", str(tmp_path / "cache"))
    assert resolve_checkpoint("upsample", download_missing=False) == cached
    with pytest.raises(CheckpointError, match="not a known checkpoint"):
        resolve_checkpoint(tmp_path / "missing.pt")
