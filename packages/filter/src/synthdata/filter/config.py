"""The settings of a filter run and its named recipes (importable without torch)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from synthdata.shards.options import option, resolve_device

#: The selection rules (see :mod:`synthdata.filter._selection`).
RULE_NAMES = ("paper", "topk", "threshold", "top1")

#: Named settings over the defaults of :class:`FilterConfig` (``default``). ``smoke``: a tiny random CLIP of
#: the RN architecture, for checking an install. ``paper``: the official filter, whose settings are these
#: defaults (OpenAI RN50, the paper rule, threshold 1/C); what it changes is the text the head is built from
#: (one prompt a class, ``synthdata.prompts.filter_text``), which the caller passes as ``head_names``.
RECIPES: dict[str, dict[str, Any]] = {"smoke": {"model": "synthdata-tiny-rn", "pretrained": "none"}, "paper": {}}


@dataclass(kw_only=True, slots=True)
class FilterConfig:
    """Settings of a filter run; the defaults are the paper's (OpenAI RN50, threshold 1/C)."""

    model: str = option("RN50", help="open_clip architecture (the paper's RN50)", concept="clip_model")
    pretrained: str = option(
        "openai", help="open_clip weights tag or file; 'none' for random weights", concept="clip_pretrained"
    )
    device: str = option("auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    precision: str = option(
        "auto", help="auto (fp16 on CUDA, fp32 on the CPU), fp32, fp16 or bf16", choices=("auto", "fp32", "fp16", "bf16")
    )
    cache_dir: str | None = option(
        None,
        help="where pretrained CLIP weights are cached: a Hugging Face hub cache (default $HF_HUB_CACHE, "
        "~/.cache/huggingface/hub)",
        concept="weights_cache",
    )
    batch_size: int = option(64, help="images a batch")
    num_workers: int | None = option(
        None, help="DataLoader decoding workers (default: 1 on the CPU, 4 on CUDA)", concept="workers"
    )
    rule: str = option("paper", help="selection rule", concept="filter_rule", choices=RULE_NAMES)
    per_class: int | None = option(
        None, help="images kept per class (the paper/topk quota; a cap otherwise)", concept="keep_per_class"
    )
    threshold: float | None = option(None, help="confidence threshold (default 1/C for paper and threshold)")
    seed: int = option(0, help="seed of the paper rule's random choice")
    shard_size: int = option(1000, help="samples per output shard")
    report: bool = option(True, help="skip the PNG report (report.json is still written)", negate=True)
    sheet_per_class: int = option(8, help="thumbnails a class on the contact sheets", cli=False)
    max_sheet_classes: int = option(100, help="rows of a contact sheet", cli=False)
    resume: bool = option(
        True, help="ignore the score checkpoints of a previous run into --out", concept="fresh", negate=True
    )
    progress: bool = option(False, help="show a progress bar", cli=False)
    staging_dir: str | None = option(
        None,
        help="local folder where a remote --out (s3://, gs://) is built before it is uploaded (default "
        "$SYNTHDATA_STAGING, else ~/.cache/synthdata/staging); kept so a rerun resumes",
    )

    def resolved(self) -> FilterConfig:
        """A copy with ``auto`` settled: the device, the precision (fp16 on CUDA) and the workers (4 on CUDA)."""
        device = resolve_device(self.device)
        cuda = device.startswith("cuda")
        precision = self.precision if self.precision != "auto" else ("fp16" if cuda else "fp32")
        workers = self.num_workers if self.num_workers is not None else (4 if cuda else 1)
        if self.batch_size < 1 or workers < 0 or self.shard_size < 1:
            raise ValueError("--batch-size and --shard-size must be >= 1 and --workers >= 0")
        return dataclasses.replace(self, device=device, precision=precision, num_workers=workers)
