"""GLIDE sampling throughput per variant: images/s/GPU, ms per step, peak memory, TFLOP/s, % of the FLOP
bound and the max error against the float32 path, for the base model alone and base + upsampler.

    uv run python benchmarks/bench_sampling.py                       # GPU: paper settings, JSON written
    uv run python benchmarks/bench_sampling.py --smoke               # CPU: tiny models, seconds, no file

Variants, each adding one thing to the one before (``compile`` branches off ``fused_norms``):
``official`` (eager half precision, text re-encoded every step, one prompt per batch of 10),
``text_cache`` (text encoded once per batch), ``mixed_batches`` (different prompts in one batch, the
batch sizes of ``--batches``), ``fused_attention`` (synthdata.kernels attention), ``fused_norms``
(GroupNorm+SiLU kernel), ``cuda_graphs`` (fixed-shape FastSampler: fused sampler step, one captured step,
channels_last), ``compile`` (FastSampler with torch.compile instead of the triton kernels).

Paper settings: base 64 px, 100 respaced ancestral steps, guidance 3; upsampler 256 px, ``fast27`` DDIM,
temperature 0.997. Without ``--weights pretrained`` the real architectures get random weights (throughput
does not depend on them). FLOPs are counted with torch's FLOP counter on one forward of each model; the
bound is ``--peak-tflops`` (default 790, the dense bf16 rate measured on an H100, see DESIGN.md; none on
the CPU). Results: ``benchmarks/results/sampling_<device>.json``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_slug, environment, print_table, write_json, write_results

from synthdata.diffusion import fast
from synthdata.diffusion.model import Text2ImUNet, create_model
from synthdata.diffusion.options import base_options, smoke_options, upsample_options
from synthdata.diffusion.pipeline import quantize_8bit, upsample_noise
from synthdata.diffusion.sampling import GeneratorNoise, model_fn_for, sample_loop
from synthdata.diffusion.schedule import create_diffusion
from synthdata.diffusion.tokenizer import get_tokenizer

VARIANTS = ("official", "text_cache", "mixed_batches", "fused_attention", "fused_norms", "cuda_graphs", "compile")
STAGES = ("base64", "base64+up256")
PROMPTS = ("a photo of a dog", "a red car parked on a street", "an oil painting of a lighthouse", "a bowl of soup")
COLUMNS = ["variant", "stage", "batch", "images_per_s", "ms_per_step", "peak_mem_gib", "achieved_tflops",
           "pct_of_flop_bound", "max_abs_err_vs_fp32", "backends"]  # fmt: skip
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


# ------------------------------------------------------------------------------------------ models
def _randomise_zero_layers(model: Text2ImUNet, seed: int) -> Text2ImUNet:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():  # GLIDE zero-initialises its output convolutions
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return model


def build_models(args: argparse.Namespace) -> tuple[Text2ImUNet, Text2ImUNet | None, str]:
    """fp32 base and upsampler (None if not needed) and a label of where the weights came from."""
    need_up = "base64+up256" in args.stages
    if args.smoke:
        tiny = dict(attention_resolutions="8,4", text_ctx=16)
        base = create_model(smoke_options("base", image_size=16, channel_mult="1,2", **tiny), seed=0)
        up = create_model(smoke_options("upsample", image_size=64, channel_mult="1,1,1,1", **tiny), seed=1)
        return _randomise_zero_layers(base, 2), _randomise_zero_layers(up, 3) if need_up else None, "smoke (random)"
    base = create_model(base_options())
    up = create_model(upsample_options()) if need_up else None
    if args.weights == "pretrained":
        from synthdata.diffusion.checkpoints import load_checkpoint

        load_checkpoint(base, "glide.base", args.cache_dir, download_missing=True, progress=True)
        if up is not None:
            load_checkpoint(up, "glide.upsample", args.cache_dir, download_missing=True, progress=True)
        return base, up, "pretrained"
    torch.manual_seed(0)
    return _randomise_zero_layers(base, 2), _randomise_zero_layers(up, 3) if up is not None else None, "random"


def forward_flops(model: Text2ImUNet, device: torch.device, low_res: int | None) -> int:
    """FLOPs of one forward of one sample (text already encoded), by torch's FLOP counter."""
    size = model.options.image_size
    x = torch.zeros(1, 3, size, size, device=device)
    tokens = torch.zeros(1, model.text_ctx, dtype=torch.long, device=device)
    mask = torch.ones(1, model.text_ctx, dtype=torch.bool, device=device)
    kw = {"low_res": torch.zeros(1, 3, low_res, low_res, device=device)} if low_res else {}
    with torch.no_grad():
        text = model.encode_text(tokens, mask)
        counter = FlopCounterMode(display=False)
        with counter:
            model(x, torch.zeros(1, dtype=torch.long, device=device), text_emb=text, **kw)
    return int(counter.get_total_flops())


# ------------------------------------------------------------------------------------------ variants
class Variant:
    """One way of running the base model and the upsampler; ``run(prompts, seeds)`` → images in [-1, 1]."""

    def __init__(self, name: str, base: Text2ImUNet, up: Text2ImUNet | None, args: argparse.Namespace,
                 device: torch.device, dtype: torch.dtype, batch: int):  # fmt: skip
        self.name, self.args, self.device, self.batch = name, args, device, batch
        self.tokenizer = get_tokenizer()
        self.base_diffusion = create_diffusion(base.options, args.base_respacing)
        self.up_diffusion = create_diffusion(up.options, args.up_respacing) if up is not None else None
        level = VARIANTS.index(name) if name != "compile" else VARIANTS.index("fused_norms")
        self.fast_loop = name in ("cuda_graphs", "compile")
        attn = "auto" if level >= VARIANTS.index("fused_attention") else "glide"
        norm = "auto" if level >= VARIANTS.index("fused_norms") else "glide"
        if name == "compile":  # inductor fuses the norms itself and cannot trace the triton launches
            attn, norm = "sdpa", "torch"
        self.backends = f"attn={attn} norm={norm}"
        channels_last = self.fast_loop and (
            args.channels_last == "on" or (args.channels_last == "auto" and device.type == "cuda" and dtype != torch.float32)
        )
        self.models: dict[str, Text2ImUNet] = {}
        self.samplers: dict[str, fast.FastSampler] = {}
        for role, model, diffusion in (("base", base, self.base_diffusion), ("up", up, self.up_diffusion)):
            if model is None:
                continue
            m = copy.deepcopy(model).to(device)
            if attn == "glide" and norm == "glide":
                m.convert_to_dtype(dtype)
            else:
                fast.accelerate(m, dtype=dtype, attention=attn, norm=norm, channels_last=channels_last)
            self.models[role] = m
            if self.fast_loop:
                opts = fast.FastOptions(compile=args.compile_mode if name == "compile" else None,
                                        channels_last=channels_last)  # fmt: skip
                guided = role == "base"
                self.samplers[role] = fast.FastSampler(
                    m, diffusion, batch_size=batch, guidance_scale=args.guidance if guided else None,
                    method="ancestral" if guided else "ddim", options=opts,
                )  # fmt: skip
        if self.fast_loop:
            self.backends += f" sampler=fused graphs={'on' if device.type == 'cuda' else 'eager'} cl={channels_last}"
            if name == "compile":
                self.backends += f" compile={args.compile_mode}"

    def _text(self, model: Text2ImUNet, prompts: Sequence[str]):
        tokens, mask = self.tokenizer.batch(prompts, model.text_ctx, device=self.device)
        return tokens, mask

    def _base(self, prompts: Sequence[str], seeds: Sequence[int], start: int | None) -> torch.Tensor:
        model, d, n = self.models["base"], self.base_diffusion, len(prompts)
        size = model.options.image_size
        noise = GeneratorNoise.from_seeds(seeds)
        x = noise.initial((n, 3, size, size), self.device)
        tokens, mask = self._text(model, prompts)
        if self.name == "official":  # the official loop: the text transformer runs inside every step
            empty = torch.full_like(tokens, model.token_embedding.num_embeddings - 1)
            tokens2, mask2 = torch.cat([tokens, empty]), torch.cat([mask, torch.zeros_like(mask)])
            s = self.args.guidance

            def fn(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                out = model(torch.cat([xt, xt]), torch.cat([t, t]), tokens2, mask2).float()
                eps, rest = out[:, :3], out[:, 3:]
                guided = eps[n:] + s * (eps[:n] - eps[n:])
                return torch.cat([guided, rest[:n]], dim=1)

            return sample_loop(d, fn, x, noise=noise, start=start)
        text = model.encode_text(tokens, mask).cat(model.empty_text_embedding().expand(n))
        if self.fast_loop:
            return self.samplers["base"](x, text, noise=noise, start=start)
        return sample_loop(d, model_fn_for(model, text, guidance_scale=self.args.guidance), x, noise=noise, start=start)

    def _up(self, low: torch.Tensor, prompts: Sequence[str], seeds: Sequence[int], start: int | None) -> torch.Tensor:
        model, d, n = self.models["up"], self.up_diffusion, len(prompts)
        assert d is not None
        size = model.options.image_size
        noise = upsample_noise(seeds)
        x = noise.initial((n, 3, size, size), self.device) * self.args.temperature
        low_res = quantize_8bit(low)
        tokens, mask = self._text(model, prompts)
        if self.name == "official":

            def fn(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return model(xt, t, tokens, mask, low_res=low_res).float()

            return sample_loop(d, fn, x, method="ddim", start=start)
        text = model.encode_text(tokens, mask)
        if self.fast_loop:
            return self.samplers["up"](x, text, start=start, low_res=low_res)
        return sample_loop(d, model_fn_for(model, text, low_res=low_res), x, method="ddim", start=start)

    @torch.no_grad()
    def run(self, stage: str, prompts: Sequence[str], seeds: Sequence[int], *, warm: bool = False) -> torch.Tensor:
        start = 1 if warm else None  # warm-up: two steps, same shapes (captures graphs, compiles)
        low = self._base(prompts, seeds, start)
        if stage == "base64":
            return low
        return self._up(low, prompts, seeds, start)


def reference(base: Text2ImUNet, up: Text2ImUNet | None, args: argparse.Namespace, device: torch.device):
    """The exact float32 path as a variant (text cached; numerically the official float32 loop)."""
    return Variant("text_cache", base, up, args, device, torch.float32, 1)


def _rows(variant: str, batch: int, official_batch: int) -> tuple[list[str], list[int]]:
    if variant in ("official", "text_cache"):
        return [PROMPTS[0]] * official_batch, list(range(official_batch))
    return [PROMPTS[i % len(PROMPTS)] for i in range(batch)], list(range(batch))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(v: Variant, stage: str, prompts: Sequence[str], seeds: Sequence[int], repeats: int,
           device: torch.device) -> tuple[float, torch.Tensor]:  # fmt: skip
    """A warm-up run (graphs captured, step compiled), then the best of ``repeats`` timed runs and its output
    (peak memory is counted from the last run's start)."""
    v.run(stage, prompts, seeds, warm=True)
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _sync(device)
        t0 = time.perf_counter()
        out = v.run(stage, prompts, seeds)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


def _extra(args: argparse.Namespace, weights: str, peak: float | None, flops_base: int, flops_up: int,
           official_batch: int) -> dict[str, Any]:  # fmt: skip
    """The result file's fields beside the rows: weights, kernel backends, settings and FLOPs per forward."""
    from synthdata.kernels import available_backends

    return {
        "weights": weights,
        "kernels": available_backends(),
        "settings": {"base_respacing": args.base_respacing, "up_respacing": args.up_respacing,
                     "guidance": args.guidance, "temperature": args.temperature, "peak_tflops": peak,
                     "gflop_per_forward": {"base": flops_base / 1e9, "upsample": flops_up / 1e9},
                     "official_batch": official_batch},
    }  # fmt: skip


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny models on the CPU, a few steps, no result file")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=None, help="default: all")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--batches", nargs="+", type=int, default=None, help="mixed-prompt batch sizes (16 32 64)")
    parser.add_argument("--official-batch", type=int, default=None, help="one prompt per batch of N (10)")
    parser.add_argument("--dtype", choices=DTYPES, default=None, help="fp16 on CUDA (official), fp32 on the CPU")
    parser.add_argument("--base-respacing", default=None, help="100 (smoke: 3)")
    parser.add_argument("--up-respacing", default=None, help="fast27 (smoke: ddim2)")
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--temperature", type=float, default=0.997)
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode of the compile variant")
    parser.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                        help="channels_last in the fast variants (auto: on CUDA in half precision)")
    parser.add_argument("--err-rows", type=int, default=2, help="rows compared with the float32 path")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per point (the best is kept)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense half-precision peak (790 on CUDA)")
    parser.add_argument("--weights", choices=("random", "pretrained"), default="random")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=None, help="result name under benchmarks/results/ (sampling_<device>)")
    parser.add_argument("--json", default=None, help="also write the rows to this file, after each row (smoke too)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log kernel/graph choices")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.smoke:
        torch.set_num_threads(1)
    dtype = DTYPES[args.dtype or ("fp16" if device.type == "cuda" else "fp32")]
    args.base_respacing = args.base_respacing or ("3" if args.smoke else "100")
    args.up_respacing = args.up_respacing or ("ddim2" if args.smoke else "fast27")
    batches = args.batches or ([2] if args.smoke else [16, 32, 64])
    official_batch = args.official_batch or (2 if args.smoke else 10)
    variants = args.variants or [v for v in VARIANTS if not (args.smoke and v == "compile")]
    peak = args.peak_tflops if args.peak_tflops is not None else (790.0 if device.type == "cuda" else None)

    base, up, weights = build_models(args)
    flops_base = forward_flops(base.to(device), device, None)
    flops_up = forward_flops(up.to(device), device, base.options.image_size) if up is not None else 0
    base_steps = create_diffusion(base.options, args.base_respacing).num_timesteps
    up_steps = create_diffusion(up.options, args.up_respacing).num_timesteps if up is not None else 0
    extra = _extra(args, weights, peak, flops_base, flops_up, official_batch)
    ref = reference(base, up, args, device)
    ref_cache: dict[tuple[str, str, int], torch.Tensor] = {}

    def ref_rows(stage: str, prompts: Sequence[str], seeds: Sequence[int]) -> torch.Tensor:
        missing = [(p, s) for p, s in zip(prompts, seeds, strict=True) if (stage, p, s) not in ref_cache]
        if missing:
            out = ref.run(stage, [p for p, _ in missing], [s for _, s in missing])
            for (p, s), img in zip(missing, out, strict=True):
                ref_cache[(stage, p, s)] = img
        return torch.stack([ref_cache[(stage, p, s)] for p, s in zip(prompts, seeds, strict=True)])

    rows: list[dict[str, Any]] = []
    for name in variants:
        sizes = [official_batch] if name in ("official", "text_cache") else batches
        for batch in sizes:
            v = Variant(name, base, up, args, device, dtype, batch)
            prompts, seeds = _rows(name, batch, official_batch)
            for stage in args.stages:
                best, out = _timed(v, stage, prompts, seeds, args.repeats, device)
                k = min(args.err_rows, batch)
                err = (out[:k].float() - ref_rows(stage, prompts[:k], seeds[:k])).abs().max().item()
                steps = base_steps + (up_steps if stage != "base64" else 0)
                flops_image = base_steps * 2 * flops_base + (up_steps * flops_up if stage != "base64" else 0)
                ips = batch / best
                tflops = ips * flops_image / 1e12
                rows.append({
                    "device": environment()["device"], "torch": torch.__version__, "variant": name, "stage": stage,
                    "batch": batch, "dtype": str(dtype).replace("torch.", ""), "images_per_s": ips,
                    "ms_per_step": 1000 * best / steps, "seconds": best,
                    "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
                    "achieved_tflops": tflops,
                    "pct_of_flop_bound": 100 * tflops / peak if peak else None,
                    "flop_bound_images_per_s": peak * 1e12 / flops_image if peak else None,
                    "max_abs_err_vs_fp32": err, "err_rows": k, "backends": v.backends,
                    "base_steps": base_steps, "up_steps": up_steps if stage != "base64" else 0,
                })  # fmt: skip
                print(f"{name:>15} {stage:>12} batch {batch:>3}: {ips:.3g} images/s, max err {err:.3g}", flush=True)
                if args.json:  # after each row, so a run killed at its time limit keeps what it measured
                    write_json(args.json, rows, extra)
            del v
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print()
    print_table(rows, COLUMNS)
    if args.json:
        write_json(args.json, rows, extra)
    if args.smoke:
        print("smoke run (tiny random models): no result file written; figures mean nothing")
    else:
        print(f"wrote {write_results(args.out or f'sampling_{device_slug()}', rows, extra)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
