"""Where shards live: a local folder or an object-store / HTTP URL, behind one small set of functions.

Local paths keep the exact behaviour of :mod:`synthdata.shards.atomic` (temp file, fsync, rename). URLs go
through fsspec: ``s3://`` (needs ``s3fs``; S3-compatible stores via ``AWS_ENDPOINT_URL``), ``gs://`` (needs
``gcsfs``), ``http(s)://`` (read-only; needs ``aiohttp``) and ``memory://`` (tests). An object store has no
rename, so a remote file is made complete by the order of writes: the data object is uploaded from a local
temp file and its size (and MD5, where the store reports one) checked before the object that declares it
complete (a shard's sidecar, then ``dataset.json``) is written. A PUT is atomic on these stores: a reader
sees a whole object or none. Listings are always fresh (fsspec's listing cache is dropped first), since other
processes write to the same prefix.

Every function takes the location as the user gave it (``str`` or a path) and prints it intact in errors.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import os
import posixpath
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from synthdata.shards.errors import StorageError

#: Schemes and the package each needs (installed with ``synthdata-shards[s3]`` / ``[gcs]``).
BACKENDS: dict[str, str | None] = {
    "s3": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "http": "aiohttp",
    "https": "aiohttp",
    "memory": None,
    "file": None,
}
READ_ONLY = frozenset({"http", "https"})
EXTRAS = {"s3fs": "s3", "gcsfs": "gcs", "aiohttp": "http"}


def scheme_of(location: str | os.PathLike[str]) -> str:
    """The URL scheme (``s3``, ``http``, ...), or ``""`` for a local path."""
    text = os.fspath(location)
    head, sep, _ = text.partition("://")
    return head.lower() if sep and head and head.replace("+", "").isalnum() else ""


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL rather than a local path (``file://`` counts as local)."""
    return scheme_of(location) not in ("", "file")


def local_path(location: str | os.PathLike[str]) -> Path:
    """A local location as a Path (``file://`` stripped)."""
    text = os.fspath(location)
    return Path(text[len("file://") :] if text.lower().startswith("file://") else text)


def check_location(location: str | os.PathLike[str], *, flag: str, write: bool = False) -> str:
    """Refuse, with one line naming ``flag`` and the fix, a location this build cannot read (or write)."""
    text = os.fspath(location)
    scheme = scheme_of(text)
    if scheme in ("", "file"):
        return text
    if scheme not in BACKENDS:
        known = ", ".join(f"{s}://" for s in sorted(BACKENDS) if s not in ("file", "gcs"))
        raise StorageError(f"{flag} {text}: unsupported URL scheme {scheme}://; use a local path or {known}")
    if write and scheme in READ_ONLY:
        raise StorageError(
            f"{flag} {text}: {scheme}:// is read-only; write to a local path, s3:// or gs:// and serve that"
        )
    package = BACKENDS[scheme]
    if package is not None:
        try:
            __import__(package)
        except ImportError as exc:
            raise StorageError(
                f"{flag} {text}: {scheme}:// needs the {package} package; install it "
                f"(pip install 'synthdata-shards[{EXTRAS[package]}]' or pip install {package})"
            ) from exc
    return text


def filesystem(location: str | os.PathLike[str]) -> tuple[Any, str]:
    """``(fsspec filesystem, path inside it)`` for a URL."""
    from fsspec.core import url_to_fs

    text = os.fspath(location)
    check_location(text, flag="location")
    try:
        return url_to_fs(text)
    except (ImportError, ValueError) as exc:
        raise StorageError(f"{text}: cannot open ({exc})") from exc


def join(base: str | os.PathLike[str], *names: str) -> str:
    """``base/names...`` for a path or a URL (no normalisation of the URL's own part)."""
    text = os.fspath(base)
    if not is_url(text):
        return str(Path(text).joinpath(*names))
    return posixpath.join(text.rstrip("/"), *names) if names else text


def basename(location: str | os.PathLike[str]) -> str:
    """The last component of a path or URL."""
    return posixpath.basename(os.fspath(location).rstrip("/"))


def _probe(location: str | os.PathLike[str], local: str, remote: str) -> bool:
    """Ask the local path (``Path.<local>``) or the URL's filesystem (``fs.<remote>``); errors mean no."""
    if not is_url(location):
        return bool(getattr(local_path(location), local)())
    fs, path = filesystem(location)
    try:
        return bool(getattr(fs, remote)(path))
    except (OSError, ValueError):
        return False


def exists(location: str | os.PathLike[str]) -> bool:
    """Whether a file or directory exists at ``location``."""
    return _probe(location, "exists", "exists")


def isdir(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a directory (a URL prefix with objects below it counts)."""
    return _probe(location, "is_dir", "isdir")


def listdir(location: str | os.PathLike[str], pattern: str = "*") -> list[str]:
    """Names (not paths) of the files directly in ``location`` that match ``pattern``, sorted."""
    if not is_url(location):
        root = local_path(location)
        if not root.is_dir():
            raise FileNotFoundError(f"{os.fspath(location)} is not a directory")
        return sorted(p.name for p in root.glob(pattern) if p.is_file())
    return sorted(_remote_entries(location, pattern))


def _remote_entries(location: str | os.PathLike[str], pattern: str) -> dict[str, int | None]:
    """``{name: size}`` of the files directly below a URL, from one fresh listing (fsspec's listing cache
    is dropped first: other processes may have written since this one last listed)."""
    fs, path = filesystem(location)
    try:
        fs.invalidate_cache(path)
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StorageError(f"{os.fspath(location)}: cannot list ({exc})") from exc
    found: dict[str, int | None] = {}
    quoted = scheme_of(location) in READ_ONLY  # an HTTP listing gives links, percent-encoded
    for entry in entries:
        if entry.get("type") == "directory":
            continue
        name = posixpath.basename(str(entry.get("name", "")).rstrip("/"))
        name = urllib.parse.unquote(name) if quoted else name
        if name and fnmatch.fnmatchcase(name, pattern):
            found[name] = None if entry.get("size") is None else int(entry["size"])
    return found


def list_sizes(location: str | os.PathLike[str], pattern: str = "*") -> dict[str, int]:
    """``{name: size in bytes}`` of the files directly in ``location`` that match ``pattern``: one listing
    for a URL (never one request per file); an empty dict when the directory does not exist yet."""
    if not is_url(location):
        root = local_path(location)
        if not root.is_dir():
            return {}
        return {p.name: p.stat().st_size for p in sorted(root.glob(pattern)) if p.is_file()}
    try:
        entries = _remote_entries(location, pattern)
    except FileNotFoundError:
        return {}
    return {name: -1 if size is None else size for name, size in sorted(entries.items())}


def read_many(locations: list[str]) -> dict[str, bytes | None]:
    """The bytes of each file (None where it is missing or unreadable); files below one URL are fetched in
    one batched call of its filesystem (concurrent requests), local ones read in turn."""
    out: dict[str, bytes | None] = {}
    remote = [loc for loc in locations if is_url(loc)]
    for loc in locations:
        if not is_url(loc):
            try:
                out[loc] = local_path(loc).read_bytes()
            except OSError:
                out[loc] = None
    if remote:
        fs, _ = filesystem(remote[0])
        inner = {loc: fs._strip_protocol(loc) for loc in remote}  # url_to_fs per location costs ~0.1 ms
        blobs = fs.cat(list(inner.values()), on_error="return")
        blobs = blobs if isinstance(blobs, dict) else {}
        for loc, key in inner.items():
            data = blobs.get(key)
            out[loc] = data if isinstance(data, bytes) else None
    return {loc: out[loc] for loc in locations}


def read_bytes(location: str | os.PathLike[str]) -> bytes:
    """The whole file; ``FileNotFoundError`` when it is absent."""
    if not is_url(location):
        return local_path(location).read_bytes()
    fs, path = filesystem(location)
    return fs.cat_file(path)  # fsspec's backends raise FileNotFoundError for a missing object (HTTP 404)


def read_text(location: str | os.PathLike[str]) -> str:
    """The whole file as UTF-8."""
    return read_bytes(location).decode("utf-8")


def size(location: str | os.PathLike[str]) -> int:
    """The file's size in bytes."""
    if not is_url(location):
        return local_path(location).stat().st_size
    fs, path = filesystem(location)
    return int(fs.size(path))


@contextlib.contextmanager
def open_read(location: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file object for streaming reads, closed on exit."""
    if not is_url(location):
        with open(local_path(location), "rb") as fh:
            yield fh
        return
    fs, path = filesystem(location)
    with fs.open(path, "rb") as fh:
        yield fh


def open_stream(location: str | os.PathLike[str]) -> IO[bytes]:
    """A binary file object for one sequential pass (the caller closes it). HTTP is read as a stream, so a
    server without range requests serves it; object stores read ahead in large blocks."""
    if not is_url(location):
        return open(local_path(location), "rb")
    fs, path = filesystem(location)
    if scheme_of(location) in READ_ONLY:
        return fs.open(path, "rb", block_size=0)
    return fs.open(path, "rb", block_size=8 << 20, cache_type="readahead")


def _stored_md5(info: dict[str, Any]) -> str | None:
    """The hex MD5 a store reports for an object, where it gives one for free: S3's ETag of a single-part
    upload (quoted hex; a multipart ETag ends in ``-N`` and is no MD5) or GCS's base64 ``md5Hash``."""
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower()):
        return etag.lower()
    md5_b64 = info.get("md5Hash")
    if isinstance(md5_b64, str):
        with contextlib.suppress(ValueError):
            return base64.b64decode(md5_b64).hex()
    return None


def _md5_file(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def upload(local: str | os.PathLike[str], location: str | os.PathLike[str]) -> None:
    """Copy a complete local file to ``location`` and check what was stored: its size, and its MD5 where the
    store reports one (S3 single-part ETag, GCS ``md5Hash``). A mismatch removes the object and raises.

    The object is not read back: that would double every transfer. The stores check each request's body
    against the checksum the client sends with it (botocore's CRC32, gcsfs's CRC32C/MD5)."""
    fs, path = filesystem(location)
    expected = Path(local).stat().st_size
    fs.put_file(os.fspath(local), path)
    info = fs.info(path)
    got = int(info.get("size", -1))
    problem = f"uploaded {got} of {expected} bytes" if got != expected else ""
    stored = _stored_md5(info)
    if not problem and stored is not None and stored != _md5_file(local):
        problem = f"the stored MD5 {stored} differs from the local file's"
    if problem:
        with contextlib.suppress(OSError):
            fs.rm_file(path)
        raise StorageError(f"{os.fspath(location)}: {problem}; the store dropped or changed data")


def write_bytes(location: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` as one object/file: atomically (temp + rename) locally, one checked PUT remotely."""
    if not is_url(location):
        from synthdata.shards.atomic import atomic_write_bytes

        atomic_write_bytes(local_path(location), data)
        return
    fs, path = filesystem(location)
    fs.pipe_file(path, data)
    if int(fs.size(path)) != len(data):
        raise StorageError(f"{os.fspath(location)}: stored size differs from the {len(data)} bytes written")


def json_bytes(obj: Any) -> bytes:
    """``obj`` as synthdata writes JSON files (indented, key-sorted, UTF-8, final newline)."""
    return (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_json(location: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON with :func:`write_bytes` (the same bytes as ``atomic_write_json`` locally)."""
    write_bytes(location, json_bytes(obj))


def remove(location: str | os.PathLike[str]) -> bool:
    """Delete a file if it exists; True when something was removed."""
    if not is_url(location):
        try:
            local_path(location).unlink()
        except FileNotFoundError:
            return False
        return True
    fs, path = filesystem(location)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        return False
    return True


def default_staging_root() -> Path:
    """Where files bound for a remote output are built first: ``$SYNTHDATA_STAGING``, else
    ``~/.cache/synthdata/staging``."""
    return Path(os.environ.get("SYNTHDATA_STAGING") or Path.home() / ".cache" / "synthdata" / "staging")
