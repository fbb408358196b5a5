"""Planning: prompts x (references) x replicates → ordered work items → shards, all fixed up front.

The plan depends only on the prompts, the settings that change images and the shard size; never on the
number of processes or the batch size. So a rerun, on any number of GPUs, finds the same shard names with
the same keys, and every item gets the same seed.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from synthdata.diffusion.runner.errors import GenerateError
from synthdata.shards import item_seed, shard_name

SEED_STREAM = "synth-generate"
#: The stream of the plan's order; its name is part of the plan fingerprint (``PLAN_ORDER``), so a run
#: planned in another order is never resumed into this one.
ORDER_STREAM = "synth-generate-order"
PLAN_ORDER = "replicate-major, seeded permutation within each replicate (1)"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,150}$")


class PromptLike(Protocol):
    """What the runner needs of a prompt record (``synthdata.prompts.PromptRecord`` fits)."""

    id: str
    class_index: int
    class_name: str
    prompt: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt: a stable id, its class and text."""

    id: str
    class_index: int
    class_name: str
    prompt: str


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One image to generate. ``shot`` indexes the class's reference images (Real Guidance) or is None."""

    key: str
    seed: int
    prompt: Prompt
    replicate: int
    shot: int | None = None


@dataclass(frozen=True, slots=True)
class PlannedShard:
    index: int
    name: str
    items: tuple[WorkItem, ...]

    @property
    def keys(self) -> list[str]:
        return [it.key for it in self.items]


def key_base(prompt_id: str) -> str:
    """The key stem of a prompt id: the id itself when it is key-safe, else a slug plus a short hash
    (so ids with dots, slashes or spaces still give unique, valid keys)."""
    if _SAFE_ID.match(prompt_id):
        return prompt_id
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", prompt_id).strip("_")[:80] or "p"
    digest = hashlib.sha256(prompt_id.encode()).hexdigest()[:10]
    return f"{slug}_{digest}" if slug[0].isalnum() else f"p{slug}_{digest}"


def item_key(prompt_id: str, replicate: int, shot: int | None = None) -> str:
    """``ID-RRRRR`` or, with Real Guidance, ``ID-sSS-RRRRR``: derived from ids, never from prompt text."""
    base = key_base(prompt_id)
    return f"{base}-{replicate:05d}" if shot is None else f"{base}-s{shot:02d}-{replicate:05d}"


def normalise_prompts(records: Iterable[PromptLike], source: str = "prompts") -> list[Prompt]:
    """Copy prompt records into :class:`Prompt`, checking ids are unique and each class index has one name."""
    prompts: list[Prompt] = []
    seen: dict[str, int] = {}
    names: dict[int, str] = {}
    for n, rec in enumerate(records, 1):
        p = Prompt(str(rec.id), int(rec.class_index), str(rec.class_name), str(rec.prompt))
        if not p.id:
            raise GenerateError(f"{source}: prompt {n} has an empty id; give every prompt a stable id")
        if p.id in seen:
            raise GenerateError(
                f"{source}: prompt id {p.id!r} appears twice (prompts {seen[p.id]} and {n}); ids must be unique"
            )
        if p.class_index < 0:
            raise GenerateError(f"{source}: prompt {p.id!r} has negative class_index {p.class_index}")
        if not p.prompt.strip():
            raise GenerateError(f"{source}: prompt {p.id!r} has empty text")
        if names.setdefault(p.class_index, p.class_name) != p.class_name:
            raise GenerateError(
                f"{source}: class_index {p.class_index} is named both {names[p.class_index]!r} and "
                f"{p.class_name!r}; one index, one name"
            )
        seen[p.id] = n
        prompts.append(p)
    if not prompts:
        raise GenerateError(f"{source} holds no prompts; write some with synth-prompts")
    return prompts


def class_list(prompts: Sequence[Prompt], classes: Sequence[str] | None = None) -> list[str]:
    """The dataset's class names: ``classes`` if given (checked against the prompts), else from the prompts,
    which must then cover indices 0..N-1 without gaps."""
    names = {p.class_index: p.class_name for p in prompts}
    if classes is not None:
        classes = list(classes)
        for i, name in sorted(names.items()):
            if i >= len(classes):
                raise GenerateError(f"class_index {i} ({name!r}) is outside the class list of {len(classes)}")
            if classes[i] != name:
                raise GenerateError(
                    f"class_index {i} is {name!r} in the prompts but {classes[i]!r} in the class list"
                )
        return classes
    missing = [i for i in range(max(names) + 1) if i not in names]
    if missing:
        raise GenerateError(
            f"the prompts have no class with index {missing[:5]}; class indices must run 0..{max(names)} "
            "without gaps, or pass the full class list (--classes FILE)"
        )
    return [names[i] for i in range(len(names))]


def plan_items(
    prompts: Sequence[Prompt],
    *,
    images_per_prompt: int,
    seed: int,
    shots: int | None = None,
) -> list[WorkItem]:
    """All work items in plan order: replicate-major (every prompt once before any prompt twice), so raising
    ``images_per_prompt`` appends items without moving the earlier ones. Within each replicate the items are
    in a seeded random order (fixed by ``seed`` alone: not by the number of processes or the batch size), so
    every shard mixes classes even though prompts files list them class by class. With Real Guidance
    (``shots``), each prompt is paired with each of its class's ``shots`` references."""
    if images_per_prompt < 1:
        raise GenerateError(f"--images-per-prompt must be >= 1, got {images_per_prompt}")
    items: list[WorkItem] = []
    shot_range: Sequence[int | None] = [None] if shots is None else range(shots)
    for rep in range(images_per_prompt):
        block = []
        for shot in shot_range:
            for p in prompts:
                key = item_key(p.id, rep, shot)
                block.append(WorkItem(key, item_seed(seed, key, stream=SEED_STREAM), p, rep, shot))
        random.Random(item_seed(seed, f"replicate-{rep}", stream=ORDER_STREAM)).shuffle(block)
        items.extend(block)
    keys = {it.key for it in items}
    if len(keys) != len(items):
        raise GenerateError("two prompt ids map to the same sample key; make the ids distinct")
    return items


def cut_shards(items: Sequence[WorkItem], shard_size: int, prefix: str = "gen") -> list[PlannedShard]:
    """Consecutive runs of ``shard_size`` items, named ``PREFIX-000-{index:06d}.tar`` (rank field 0: the
    name is the same whatever the number of processes)."""
    if shard_size < 1:
        raise GenerateError(f"--shard-size must be >= 1, got {shard_size}")
    return [
        PlannedShard(i, shard_name(prefix, 0, i), tuple(items[start : start + shard_size]))
        for i, start in enumerate(range(0, len(items), shard_size))
    ]


def prompts_digest(prompts: Sequence[Prompt]) -> str:
    """SHA-256 over the prompts (ids, classes, texts) in order: identifies the prompt set in a fingerprint."""
    h = hashlib.sha256()
    for p in prompts:
        h.update(json.dumps([p.id, p.class_index, p.class_name, p.prompt], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def jsonable(obj: Any) -> Any:
    """A JSON round trip, so fingerprints compare equal to what was read back from disk."""
    return json.loads(json.dumps(obj, sort_keys=True))
