"""Files that other tools look for beside the shards, so they read a shard directory with no tweak.

* ``_info.json`` for timm: ``timm.data.create_dataset("wds/NAME", root=DIR, split="train")`` (and timm's
  ``train.py --dataset wds/NAME --data-dir DIR``) finds the shard list and sample count there, no brace split.
* ``shardindex.json`` for wids: ``wids.ShardListDataset("DIR/shardindex.json")``.
* ``README.md``, a Hugging Face dataset card whose front matter names the shards and their columns:
  ``datasets.load_dataset(DIR)`` gives the images and ``cls`` as a ``ClassLabel`` with the class names.

They describe exactly the complete shards (those with a sidecar), so write them after the last sidecar and
before ``dataset.json`` (which stays the last file a run writes). A file of one of these names that synthdata
did not write (no ``written_by`` mark) is left alone and reported as kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synthdata.shards import storage
from synthdata.shards.dataset import LABELS_FROM_CLS, ShardDataset
from synthdata.shards.encoding import IMAGE_EXTENSIONS
from synthdata.shards.errors import ShardError

TIMM_INFO = "_info.json"
WIDS_INDEX = "shardindex.json"
HF_CARD = "README.md"
INTEROP_FILES = (TIMM_INFO, WIDS_INDEX, HF_CARD)
WRITTEN_BY = "synthdata.shards.interop"
SPLIT = "train"


@dataclass(frozen=True, slots=True)
class InteropFiles:
    """What :func:`write_interop_files` did: locations written, and same-named files of others left alone."""

    written: tuple[str, ...]
    kept: tuple[str, ...]


def image_columns(dataset: ShardDataset) -> list[str]:
    """The image extensions the complete shards hold, in :data:`IMAGE_EXTENSIONS` order.

    Sidecars written before ``image_formats`` existed say nothing; then every known extension is listed.
    """
    seen = {fmt for shard in dataset.shards for fmt in shard.image_formats}
    if not seen and dataset.shards and not all(s.image_formats for s in dataset.shards):
        seen = set(IMAGE_EXTENSIONS)
    return [e for e in IMAGE_EXTENSIONS if e in seen] + sorted(seen - set(IMAGE_EXTENSIONS))


def label_source(dataset: ShardDataset) -> str:
    """The ``labels`` all complete shards share (``cls``, ``json:FIELD``...), or ``mixed``."""
    sources = {s.labels for s in dataset.shards} or {LABELS_FROM_CLS}
    return sources.pop() if len(sources) == 1 else "mixed"


def timm_info(dataset: ShardDataset, classes: Sequence[str], name: str) -> dict[str, Any]:
    """timm's ``_info.json``: one ``train`` split with the shard names (relative) and their sample counts.

    For shards labelled by a ``json`` field that holds class indices (``labels`` ``json:FIELD``), the split's
    ``alt_label`` tells timm to read that field instead of the ``cls`` member.
    """
    split: dict[str, Any] = {
        "name": SPLIT,
        "num_samples": dataset.num_samples,
        "filenames": [s.name for s in dataset.shards],
        "shard_lengths": [s.count for s in dataset.shards],
    }
    source = label_source(dataset)
    if source.startswith("json:"):
        split["alt_label"] = source.removeprefix("json:")
    return {
        "written_by": WRITTEN_BY,
        "name": name,
        "num_classes": len(classes),
        "classes": list(classes),
        "splits": {SPLIT: split},
    }


def wids_index(dataset: ShardDataset, name: str) -> dict[str, Any]:
    """A wids shard index (``wids-shard-index-v1``); shard urls are relative to the index's location."""
    return {
        "__kind__": "wids-shard-index-v1",
        "wids_version": 1,
        "written_by": WRITTEN_BY,
        "name": name,
        "shardlist": [{"url": s.name, "nsamples": s.count, "filesize": s.nbytes} for s in dataset.shards],
    }


# YAML (1.1, as PyYAML reads it) refuses these characters in a stream, or reads them as line breaks.
_YAML_ESCAPE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def yaml_quote(text: str) -> str:
    """``text`` as a YAML double-quoted scalar that reads back as exactly ``text``."""
    quoted = json.dumps(text, ensure_ascii=False)  # JSON's escapes are a subset of YAML's
    return _YAML_ESCAPE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def _glob_escape(name: str) -> str:
    """A file name as a literal ``data_files`` pattern (Hugging Face globs these paths)."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def hf_card(dataset: ShardDataset, classes: Sequence[str], name: str) -> str:
    """A Hugging Face dataset card: front matter with the shard files and the columns, then a short text.

    Columns: one image column per image extension in the shards, and ``cls`` as a class label with the
    class names. For shards labelled by a ``json`` field (no ``cls`` members) the ``json`` column is a
    struct holding just that field, as the class label.
    """
    source = label_source(dataset)
    names = [f"{yaml_quote(str(i))}: {yaml_quote(c)}" for i, c in enumerate(classes)]
    lines = [
        "---",
        f"# written_by: {WRITTEN_BY} (rewritten whenever the shards change; edits are lost)",
        "configs:",
        "- config_name: default",
        "  data_files:",
        f"  - split: {SPLIT}",
        "    path:" + ("" if dataset.shards else " []"),
        *(f"    - {yaml_quote(_glob_escape(s.name))}" for s in dataset.shards),
        "dataset_info:",
        "  features:",
    ]
    for column in image_columns(dataset):
        lines += [f"  - name: {yaml_quote(column)}", "    dtype: image"]
    if source.startswith(("json:", "json-names:")):
        field = source.split(":", 1)[1]
        lines += ["  - name: json", "    struct:", f"    - name: {yaml_quote(field)}", "      dtype:"]
        lines += ["        class_label:", "          names:", *(f"            {n}" for n in names)]
    else:
        lines += ["  - name: cls", "    dtype:", "      class_label:", "        names:"]
        lines += [f"          {n}" for n in names]
    title = " ".join(name.split()) or "shards"
    label = "`cls`" if source == LABELS_FROM_CLS else f"`{source}` (the `json` column)"
    lines += [
        "---",
        "",
        f"# {title}",
        "",
        f"{dataset.num_samples} images in {len(classes)} classes, as {len(dataset.shards)} WebDataset shards "
        f"(labels: {label}). `dataset.json` holds the class list and how the shards were made; each "
        "`NAME.idx.json` indexes the shard `NAME.tar`.",
        "",
        "```python",
        "datasets.load_dataset(DIR)",
        f'timm.data.create_dataset("wds/{title}", root=DIR, split="{SPLIT}")',
        f'wids.ShardListDataset("DIR/{WIDS_INDEX}")',
        "```",
        "",
        f"<!-- {WRITTEN_BY}: synthdata writes this card next to its shards; see docs/shards.md -->",
        "",
    ]
    return "\n".join(lines)


def _ours(location: str) -> bool | None:
    """True if synthdata wrote the file at ``location``, False if someone else did, None if it is absent."""
    try:
        data = storage.read_bytes(location)
    except FileNotFoundError:
        return None
    if location.endswith(".json"):
        try:
            obj = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False
        return isinstance(obj, dict) and obj.get("written_by") == WRITTEN_BY
    return WRITTEN_BY.encode() in data


def write_interop_files(
    dataset: ShardDataset, *, classes: Sequence[str] | None = None, name: str | None = None
) -> InteropFiles:
    """Write ``_info.json``, ``shardindex.json`` and ``README.md`` for the complete shards of ``dataset``.

    ``classes`` defaults to the class list of the directory's ``dataset.json`` and ``name`` to its name (or
    the directory's). Call this after the last shard's sidecar and before writing ``dataset.json``, with
    ``ShardDataset.open(DIR, read_info=False)`` and the run's ``classes``: ``dataset.json`` may be absent or
    stale then. Local files are written atomically, remote ones with one checked PUT each; a same-named
    file that synthdata did not write is left alone (listed in ``kept``).
    """
    classes = list(dataset.classes if classes is None else classes)
    if not classes:
        raise ShardError(f"{dataset.location}: no class names for the interop files; pass classes")
    if name is None:
        name = dataset.info.name if dataset.info is not None and dataset.info.name else ""
    name = name or storage.basename(dataset.location) or "shards"
    texts = {
        TIMM_INFO: storage.json_bytes(timm_info(dataset, classes, name)),
        WIDS_INDEX: storage.json_bytes(wids_index(dataset, name)),
        HF_CARD: hf_card(dataset, classes, name).encode("utf-8"),
    }
    written, kept = [], []
    for file_name, data in texts.items():
        target = storage.join(dataset.location, file_name)
        if _ours(target) is False:
            kept.append(target)
            continue
        storage.write_bytes(target, data)
        written.append(target)
    return InteropFiles(tuple(written), tuple(kept))
