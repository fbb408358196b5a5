"""Loading open_clip models by architecture name and pretrained tag, with clear errors offline."""

from __future__ import annotations

import difflib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import open_clip
import torch
from open_clip.pretrained import get_pretrained_cfg

from synthdata.shards.options import resolve_device

log = logging.getLogger(__name__)

TINY_PREFIX = "synthdata-tiny"
_CONFIG_DIR = Path(__file__).parent / "model_configs"
_PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_NO_WEIGHTS = ("none", "random", "")


class WeightsUnavailableError(RuntimeError):
    """Pretrained CLIP weights are neither cached nor downloadable."""


@dataclass(slots=True)
class ClipBundle:
    """An open_clip model in eval mode with its eval transform and tokenizer.

    ``pretrained`` is the weights tag (or file) loaded, or ``"none"`` for random weights; ``dtype`` is the
    dtype the model's weights were cast to (inputs are cast to it).
    """

    model: Any
    preprocess: Any
    tokenizer: Any
    name: str
    pretrained: str
    device: torch.device
    dtype: torch.dtype

    @property
    def artifact(self) -> str:
        """The artifact name ``clip.<arch>.<tag>`` (e.g. ``clip.RN50.openai``)."""
        return f"clip.{self.name}.{Path(self.pretrained).name}"

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)


def register_tiny_models() -> list[str]:
    """Register the tiny test/benchmark architectures (``synthdata-tiny-rn``, ``synthdata-tiny-vit``).

    They use the real text vocabulary and context length, so the standard CLIP tokenizer works. Idempotent.
    """
    names = sorted(p.stem for p in _CONFIG_DIR.glob("*.json"))
    if not all(n in open_clip.list_models() for n in names):
        open_clip.add_model_config(_CONFIG_DIR)
    return names


def _unknown_model_error(name: str) -> ValueError:
    models = open_clip.list_models()
    lowered = {m.lower(): m for m in models}
    close = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=6, cutoff=0.5)]
    hint = f"close matches: {', '.join(close)}" if close else f"e.g. {', '.join(models[:5])}"
    return ValueError(
        f"unknown CLIP model {name!r}; {hint} ({len(models)} models in open_clip.list_models())"
    )


def _cache_root(cache_dir: str | os.PathLike[str] | None, kind: str) -> str:
    if cache_dir:
        return str(cache_dir)
    if kind == "url":
        return os.path.expanduser("~/.cache/clip")
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _cached_weights(cfg: dict, cache_dir: str | None) -> str | None:
    """The local path of the weights ``cfg`` names if already downloaded, else None."""
    if cfg.get("file") and os.path.isfile(cfg["file"]):
        return cfg["file"]
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache
        from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        repo, filename = os.path.split(hub)
        candidates = [filename] if filename else [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for candidate in candidates:
            found = try_to_load_from_cache(repo, candidate, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    url = cfg.get("url", "")
    if url and not hub:  # open_clip prefers the hub; OpenAI's URL files are TorchScript, refused by weights_only
        path = os.path.join(_cache_root(cache_dir, "url"), os.path.basename(url))
        if os.path.isfile(path):
            return path
    return None


def _offline(cfg: dict) -> bool:
    """True when downloads cannot work: HF_HUB_OFFLINE is set, or the weights' host does not resolve."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return True
    host = "huggingface.co" if cfg.get("hf_hub") else urlparse(cfg.get("url", "")).hostname
    if not host:
        return False
    old = socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(3)
        socket.getaddrinfo(host, 443)
    except OSError:
        return True
    finally:
        socket.setdefaulttimeout(old)
    return False


def _source(cfg: dict) -> str:
    """Where open_clip downloads the weights of ``cfg`` from: the Hugging Face hub when ``cfg`` names a hub
    repository (open_clip prefers it), else the URL."""
    hub = cfg.get("hf_hub", "")
    if hub:
        repo, filename = os.path.split(hub)
        return f"https://huggingface.co/{repo}" + (f" (file {filename})" if filename else "")
    return cfg.get("url", "") or "nowhere (open_clip lists no source)"


def _missing_weights_message(name: str, pretrained: str, cfg: dict, cache_dir: str | None) -> str:
    """One line: the weights, where they come from, where they were looked for, and the fixes."""
    hub = bool(cfg.get("hf_hub"))
    where = _cache_root(cache_dir, "hf" if hub else "url")
    if hub:
        copy = "copy a Hugging Face hub cache that holds them there"
        if cache_dir is None:
            copy += " (or set HF_HUB_CACHE to one)"
    else:
        copy = f"put the file from that URL into {where}"
    return (
        f"CLIP weights {name}/{pretrained} are not cached and cannot be downloaded here (no network): "
        f"open_clip downloads them from {_source(cfg)} into {where}; fix: run once with network access "
        f"(the download is cached for later runs), {copy}, or use pretrained 'none' for random weights"
    )


def _resolve_weights(name: str, pretrained: str, cache_dir: str | None) -> tuple[str, dict]:
    """Map a tag (or file path) to a local weights file, downloading it if possible."""
    cfg = get_pretrained_cfg(name, pretrained)
    if not cfg:
        if os.path.isfile(pretrained):
            return pretrained, {}
        tags = open_clip.list_pretrained_tags_by_model(name)
        listed = ", ".join(tags) if tags else "none (use pretrained='none' for random weights)"
        raise ValueError(
            f"unknown pretrained tag {pretrained!r} for CLIP model {name!r}; available tags: {listed}"
        )
    path = _cached_weights(cfg, cache_dir)
    if path:
        return path, cfg
    if _offline(cfg):
        raise WeightsUnavailableError(_missing_weights_message(name, pretrained, cfg, cache_dir))
    where = _cache_root(cache_dir, "hf" if cfg.get("hf_hub") else "url")
    try:
        path = open_clip.download_pretrained(cfg, cache_dir=cache_dir)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsUnavailableError(
            f"could not download CLIP weights {name}/{pretrained} from {_source(cfg)} into {where}: {first}"
        ) from exc
    if not path:
        raise WeightsUnavailableError(f"CLIP weights {name}/{pretrained}: no download source is known")
    return path, cfg


def ensure_weights(name: str, pretrained: str | None, cache_dir: str | os.PathLike[str] | None = None) -> str | None:
    """The local weights file of ``name``/``pretrained`` (downloaded now if needed and possible), or None for
    random weights; raises the one-line :class:`WeightsUnavailableError` when they cannot be had. Builds no
    model: callers check every model a run needs before it starts."""
    tag = "none" if pretrained is None or str(pretrained).lower() in _NO_WEIGHTS else str(pretrained)
    if name.startswith(TINY_PREFIX) or tag == "none":
        return None
    if name not in open_clip.list_models():
        raise _unknown_model_error(name)
    return _resolve_weights(name, tag, str(cache_dir) if cache_dir is not None else None)[0]


def load_clip(
    name: str = "RN50",
    pretrained: str | None = "openai",
    *,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    cache_dir: str | os.PathLike[str] | None = None,
    seed: int | None = 0,
) -> ClipBundle:
    """Create an open_clip model, its eval transform and tokenizer; the model is in eval mode.

    ``pretrained``: an open_clip tag (``openai`` for the paper's RN50), a weights file, or ``"none"``/None
    for random weights. ``precision``: ``fp32``, or ``fp16``/``bf16`` on CUDA only. Names starting with
    ``synthdata-tiny`` are the tiny test architectures (registered on demand). Random weights are drawn
    from ``torch.manual_seed(seed)`` in a forked RNG (the caller's RNG state is left alone), so the same
    name and seed always give the same model; ``seed=None`` draws them from the global RNG instead.
    """
    if isinstance(device, str):
        device = resolve_device(device)  # "auto": CUDA when available
    device = torch.device(device)
    if precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(_PRECISIONS)}, got {precision!r}")
    if precision != "fp32" and device.type != "cuda":
        raise ValueError(f"precision {precision} needs a CUDA device (got {device}); use fp32 on the CPU")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was requested but torch sees no CUDA device; use --device cpu")
    if name.startswith(TINY_PREFIX):
        register_tiny_models()
    if name not in open_clip.list_models():
        raise _unknown_model_error(name)
    tag = "none" if pretrained is None or str(pretrained).lower() in _NO_WEIGHTS else str(pretrained)
    cache = str(cache_dir) if cache_dir is not None else None
    kwargs: dict[str, Any] = {}
    weights = None
    if tag != "none":
        weights, cfg = _resolve_weights(name, tag, cache)
        for key, arg in (
            ("mean", "image_mean"),
            ("std", "image_std"),
            ("interpolation", "image_interpolation"),
            ("resize_mode", "image_resize_mode"),
        ):
            if cfg.get(key) is not None:
                kwargs[arg] = cfg[key]
        # OpenAI's weights were trained with QuickGELU; RN50's plain config lacks it (open_clip warns).
        if cfg.get("quick_gelu") and not open_clip.get_model_config(name).get("quick_gelu", False):
            kwargs["force_quick_gelu"] = True
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.INFO))  # open_clip narrates every step at INFO on the root logger
    seeded = tag == "none" and seed is not None
    cuda = [device.index or 0] if seeded and device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda, enabled=seeded):
            if seeded:
                torch.manual_seed(seed)
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=weights, precision=precision, device=device, cache_dir=cache, **kwargs
            )
        tokenizer = open_clip.get_tokenizer(name, cache_dir=cache)
    finally:
        logging.disable(previous)
    model.eval()
    log.info("loaded CLIP %s (%s) on %s in %s", name, tag, device, precision)
    return ClipBundle(model, preprocess, tokenizer, name, tag, device, _PRECISIONS[precision])
