"""Path options as a user gives them: a local path or an ``s3://``, ``gs://`` or ``http(s)://`` URL, kept as
the exact string (``pathlib.Path`` would turn ``http://host`` into ``http:/host`` and create local folders
named ``s3:``). Each is an argparse ``type``: a location the option cannot serve is refused with one line,
at parse time, before anything is read or written."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from synthdata.shards import storage
from synthdata.shards.errors import StorageError


def location(flag: str, *, write: bool = False) -> Callable[[str], str]:
    """A local path or a URL this build can read (``write``: and write); the string as given."""

    def parse(text: str) -> str:
        try:
            return storage.check_location(text, flag=flag, write=write)
        except StorageError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag} ")) from exc

    return parse


def local(flag: str, *, what: str = "a local path") -> Callable[[str], str]:
    """A local path only: a URL is refused, saying what to do instead."""

    def parse(text: str) -> str:
        if storage.scheme_of(text) == "file":
            return str(storage.local_path(text))
        if storage.scheme_of(text):
            raise argparse.ArgumentTypeError(
                f"{text}: {flag} takes {what}, not a URL; use a local or mounted path (copy to or from object "
                "storage with your store's tools)"
            )
        return text

    return parse


def check_paths(wanted: list[tuple[str, str | None, str]]) -> None:
    """``(flag, path or None, what it should be)`` for each input: a missing one is a one-line ``ValueError``
    naming the flag and what was expected (checked before a command imports its models)."""
    for flag, path, what in wanted:
        if path is not None and not storage.exists(path):
            raise ValueError(f"{flag} {path}: no such file or directory; expected {what}")
