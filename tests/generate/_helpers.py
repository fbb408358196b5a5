"""Fixtures shared by the generate tests: prompts files and a fast deterministic stand-in pipeline."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from synthdata.diffusion.schedule import space_timesteps
from synthdata.shards import iter_samples

CLASSES = ["cat", "dog", "car"]


def prompt_records(n_per_class: int = 2, classes: Sequence[str] = CLASSES) -> list[dict[str, Any]]:
    return [
        {
            "id": f"c{c:04d}-{n:05d}",
            "class_index": c,
            "class_name": name,
            "prompt": f"a photo of a {name}, variant {n}",
            "source": "template",
        }
        for c, name in enumerate(classes)
        for n in range(n_per_class)
    ]


def write_prompts_file(path: Path, records: list[dict[str, Any]] | None = None) -> Path:
    records = prompt_records() if records is None else records
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@dataclass
class _Diffusion:
    num_timesteps: int


class FakePipeline:
    """Images from each item's seed alone (so batch composition cannot matter), plus the reference image's
    mean when Real Guidance is on. ``fail_after`` raises on that many-th call, to simulate a crash."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.kwargs: list[dict[str, Any]] = []
        self.fail_after = fail_after

    def generate(self, prompts: Sequence[str], seeds: Sequence[int], **kw: Any) -> torch.Tensor:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls.append(list(prompts))
        self.kwargs.append(kw)
        size = kw["size"]
        out = []
        refs = kw.get("real_guidance") or [None] * len(seeds)
        for s, ref in zip(seeds, refs, strict=True):
            g = torch.Generator().manual_seed(int(s))
            img = torch.randint(0, 200, (size, size, 3), generator=g, dtype=torch.int32)
            if ref is not None:
                img = img + int(ref.float().mean()) // 8
            out.append(img.to(torch.uint8))
        return torch.stack(out)

    def describe(self) -> dict[str, Any]:
        return {"device": "cpu", "dtype": "float32", "fake": True, "digests": self.model_digests()}

    def model_digests(self) -> dict[str, str]:
        return {"base": "state:fake-base"}

    def diffusion(self, role: str, respacing: str) -> _Diffusion:
        return _Diffusion(len(space_timesteps(1000, respacing)))


def read_dir(directory: Path) -> dict[str, tuple[np.ndarray, int, dict[str, Any]]]:
    """key -> (pixels, class, metadata) of every sample in a shard directory."""
    out = {}
    for s in iter_samples(directory):
        assert s.key not in out, f"duplicate key {s.key}"
        out[s.key] = (np.asarray(s.image.convert("RGB")), s.cls, s.meta)
    return out


def make_imagefolder(root: Path, classes: Sequence[str], per_class: int, size: int = 40) -> Path:
    for c, name in enumerate(classes):
        d = root / f"{c:03d}_{name}"
        d.mkdir(parents=True)
        for i in range(per_class):
            arr = np.full((size, size + 8, 3), 30 * c + 10 * i, np.uint8)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            (d / f"img{i}.png").write_bytes(buf.getvalue())
    return root
