"""Official GLIDE checkpoints: named artifacts, cache directory, resumable download, safe strict loading.

``load_checkpoint(model, "glide.base")`` looks for a local path, else ``<cache>/glide/base.pt``, else downloads
the official release file with a progress bar into ``<cache>/glide/base.pt.part`` (resumed with an HTTP
Range request when a partial file exists) and renames it atomically when complete. Files are always read
with ``torch.load(weights_only=True)`` (or safetensors), so a malicious pickle cannot run code.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "ARTIFACTS",
    "Artifact",
    "CheckpointError",
    "default_cache_dir",
    "download",
    "file_sha256",
    "load_checkpoint",
    "load_state_dict",
    "resolve_checkpoint",
    "state_dict_sha256",
]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class CheckpointError(RuntimeError):
    """A checkpoint could not be found, downloaded or loaded (the message says which file and why)."""


@dataclass(frozen=True)
class Artifact:
    name: str
    filename: str
    url: str
    kind: str  # "base" or "upsample": which options it belongs to
    size: int | None = None
    sha256: str | None = None


_RELEASE = "https://openaipublic.blob.core.windows.net/diffusion/dec-2021"
ARTIFACTS: Mapping[str, Artifact] = {
    "glide.base": Artifact("glide.base", "base.pt", f"{_RELEASE}/base.pt", "base"),
    "glide.upsample": Artifact("glide.upsample", "upsample.pt", f"{_RELEASE}/upsample.pt", "upsample"),
}
_ALIASES = {"base": "glide.base", "upsample": "glide.upsample"}


def default_cache_dir() -> Path:
    """``$SYNTHDATA_CACHE`` or ``~/.cache/synthdata``."""
    env = os.environ.get("SYNTHDATA_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "synthdata"


def artifact(name: str) -> Artifact | None:
    return ARTIFACTS.get(_ALIASES.get(name, name))


# ------------------------------------------------------------------------------------------ download
def download(
    url: str,
    dest: str | Path,
    *,
    progress: bool = True,
    timeout: float = 60.0,
    expected_size: int | None = None,
    sha256: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``: resume a partial file with a Range request, show a
    tqdm bar, check the size (from the server or ``expected_size``) and ``sha256`` when known, then rename
    atomically. Raises :class:`CheckpointError` (naming the file and the URL) when the server is unreachable.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    response = _open(url, dest, have, timeout, expected_size)
    if response is not None:
        with response:
            total = _receive(response, url, dest, part, have, expected_size, progress)
        if total is not None and part.stat().st_size != total:
            raise CheckpointError(
                f"download of {dest.name} from {url} is incomplete ({part.stat().st_size} of {total} bytes); "
                "run again to resume"
            )
    _verify(part, url, dest, expected_size, sha256)
    os.replace(part, dest)
    return dest


def _open(url: str, dest: Path, have: int, timeout: float, expected_size: int | None) -> Any:
    """The response for ``url`` from byte ``have`` on, or ``None`` when the partial file is already whole."""
    request = urllib.request.Request(url, headers={"User-Agent": "synthdata"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have and (expected_size is None or have == expected_size):
            return None  # the partial file is already complete
        raise CheckpointError(f"cannot download {dest.name} from {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CheckpointError(
            f"cannot download {dest.name} from {url} ({reason}); you may be offline: fetch the file where the "
            f"internet is reachable and put it at {dest} (synth-generate also takes a path: --base-checkpoint "
            "/ --upsample-checkpoint)"
        ) from exc


def _receive(
    response: Any, url: str, dest: Path, part: Path, have: int, expected_size: int | None, progress: bool
) -> int | None:
    """Append the response to ``part`` (or restart it if the server ignored the Range header); return the
    total size the file should have (``None`` if unknown)."""
    if getattr(response, "status", 200) == 206:
        mode = "ab"
    else:  # the server ignored the Range header: start again
        mode, have = "wb", 0
    length = response.headers.get("Content-Length")
    total = have + int(length) if length is not None else expected_size
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name)
    try:
        with open(part, mode) as fh:
            while chunk := _read_chunk(response, url, dest, part):
                fh.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        if bar is not None:
            bar.close()
    return total


def _read_chunk(response: Any, url: str, dest: Path, part: Path) -> bytes:
    try:
        return response.read(_CHUNK)
    except (OSError, http.client.HTTPException) as exc:
        raise CheckpointError(
            f"download of {dest.name} from {url} was interrupted ({exc}); "
            f"run again to resume from {part.stat().st_size if part.exists() else 0} bytes"
        ) from exc


def _verify(part: Path, url: str, dest: Path, expected_size: int | None, sha256: str | None) -> None:
    """Remove ``part`` and raise when its size or SHA-256 is not the expected one."""
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        part.unlink()
        raise CheckpointError(f"{dest.name} from {url} has {size} bytes, expected {expected_size}; removed")
    if sha256 is not None:
        digest = file_sha256(part)
        if digest != sha256:
            part.unlink()
            raise CheckpointError(f"{dest.name} from {url} has sha256 {digest}, expected {sha256}; removed")


def resolve_checkpoint(
    name_or_path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    download_missing: bool = True,
    progress: bool = True,
) -> Path:
    """A local file for ``name_or_path``: an existing path; else an artifact name (``glide.base``,
    ``glide.upsample``, or ``base``/``upsample``) found in ``<cache_dir>/glide/`` or downloaded there."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    art = artifact(str(name_or_path))
    if art is None:
        raise CheckpointError(
            f"{name_or_path}: no such file, and not a known checkpoint name ({', '.join(ARTIFACTS)})"
        )
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cached = cache / "glide" / art.filename
    if cached.is_file():
        return cached
    if not download_missing:
        raise CheckpointError(f"{art.filename} is not in {cached.parent}; download it from {art.url}")
    log.info("downloading %s from %s to %s", art.filename, art.url, cached)
    return download(art.url, cached, progress=progress, expected_size=art.size, sha256=art.sha256)


# ------------------------------------------------------------------------------------------ loading
def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file with ``weights_only=True`` (no code runs)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot load {path} safely: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return dict(obj)


def load_checkpoint(
    model: nn.Module,
    name_or_path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    download_missing: bool = True,
    progress: bool = True,
) -> Path:
    """Load official weights into ``model`` strictly (every key and shape must match); returns the file."""
    path = resolve_checkpoint(name_or_path, cache_dir, download_missing=download_missing, progress=progress)
    state = load_state_dict(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit this model: {exc}") from exc
    return path


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def state_dict_sha256(model: nn.Module) -> str:
    """sha256 over the sorted keys, shapes and float32 values of a model's state dict (the same on any
    device; computed before any fp16/bf16 conversion it identifies the weights)."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        t = value.detach().to("cpu", torch.float32).contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()
