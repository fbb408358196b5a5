"""Which class each folder of an ImageFolder holds, by name rather than by sorted position.

A dataset's native folders rarely sort into its standard class order (Food-101's ``cheese_plate`` sorts before
``cheesecake``, Oxford Pets' capitalised cat breeds before the dogs, Stanford Cars' ``Acura Integra`` before
``Acura RL``), so the class of a folder is found from its name: the class names, then each class's other
names (``aliases``: native folder names such as EuroSAT's ``AnnualCrop`` or ImageNet's ``n01440764``), compared
case-, space- and punctuation-blind, after an index prefix (``003_``, ``001.``) is dropped. Folders named by
index only (``0``..``N-1`` or ``1``..``N``, as the official code's test sets) are taken as indices.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_INDEX_PREFIX = re.compile(r"^\d+[._](?=.)")


def name_key(name: str) -> str:
    """The comparison key of a class or folder name: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


class FolderMismatch(ValueError):
    """Folder names that match no class, or two folders that match one class."""


def _table(classnames: Sequence[str], aliases: Sequence[Sequence[str]] | None) -> dict[str, int | None]:
    """key -> class index (None: a key two classes share, which names neither)."""
    table: dict[str, int | None] = {}
    for index, names in enumerate(_names_per_class(classnames, aliases)):
        for key in {name_key(n) for n in names} - {""}:
            table[key] = index if table.get(key, index) == index else None
    return table


def _names_per_class(classnames: Sequence[str], aliases: Sequence[Sequence[str]] | None) -> list[list[str]]:
    if aliases is not None and len(aliases) != len(classnames):
        raise ValueError(f"{len(aliases)} alias lists for {len(classnames)} classes")
    return [[name, *(aliases[i] if aliases is not None else ())] for i, name in enumerate(classnames)]


def _by_index(folders: Sequence[str], n: int) -> list[int] | None:
    """Folders named ``0``..``n-1`` or ``1``..``n``: their indices; None for any other names."""
    if not folders or not all(f.isdigit() for f in folders):
        return None
    values = [int(f) for f in folders]
    for first in (0, 1):
        if sorted(values) == list(range(first, n + first)):
            return [v - first for v in values]
    return None


def _lookup(folder: str, table: dict[str, int | None]) -> int | str | None:
    """The folder's class, None when it names none, ``"ambiguous"`` when it names two."""
    for key in (name_key(_INDEX_PREFIX.sub("", folder)), name_key(folder)):
        if key in table:
            return "ambiguous" if table[key] is None else table[key]
    return None


def folder_classes(
    folders: Sequence[str], classnames: Sequence[str], aliases: Sequence[Sequence[str]] | None = None
) -> list[int] | None:
    """The class index of each of ``folders`` (in the given order), found by name; None when not one folder
    names a class (the caller then keeps the sorted order).

    Raises :class:`FolderMismatch` (one line) when some folders name a class and others name none or two,
    or when two folders name the same class.
    """
    numbered = _by_index(folders, len(classnames))
    if numbered is not None:
        return numbered
    table = _table(classnames, aliases)
    found = {f: _lookup(f, table) for f in folders}
    matched = {f: c for f, c in found.items() if isinstance(c, int)}
    if not matched:
        return None
    unmatched = [f for f, c in found.items() if not isinstance(c, int)]
    if unmatched:
        shown = ", ".join(repr(f) for f in unmatched[:5]) + (", ..." if len(unmatched) > 5 else "")
        how = "names two classes" if all(found[f] == "ambiguous" for f in unmatched) else "names no class"
        raise FolderMismatch(
            f"{len(unmatched)} of {len(folders)} class folders match no single class by name ({shown}: {how}; "
            f"{len(matched)} others do); name each folder after its class (e.g. {classnames[0]!r}, or "
            "'000_<name>'), or name them all by class index 0..N-1"
        )
    seen: dict[int, str] = {}
    for folder, cls in matched.items():
        if cls in seen:
            raise FolderMismatch(
                f"folders {seen[cls]!r} and {folder!r} both name class {cls} ({classnames[cls]!r}); keep one"
            )
        seen[cls] = folder
    return [matched[f] for f in folders]
