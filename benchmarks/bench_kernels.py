"""Per-kernel timings at GLIDE's shapes for every backend that can run here, with the error against the
reference backend: attention (text keys joined), GroupNorm+scale-shift+SiLU, the fused sampler step.

    uv run python benchmarks/bench_kernels.py                 # GPU: GLIDE shapes, JSON written
    uv run python benchmarks/bench_kernels.py --smoke         # CPU: tiny shapes, seconds, no file

Backends that cannot run (triton without CUDA, xformers not installed) are listed with the reason.
Results: ``benchmarks/results/kernels_<device>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_slug, print_table, write_json, write_results

from synthdata.kernels import (
    BackendUnavailableError,
    SamplerTables,
    attention,
    attention_math,
    available_backends,
    ddim_step,
    group_norm_silu,
    group_norm_torch,
    guided_ancestral_step,
)

COLUMNS = ["op", "case", "backend", "ms", "throughput", "unit", "max_abs_err", "note"]


def _time(fn: Callable[[], Any], device: torch.device, iters: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def attention_cases(smoke: bool) -> list[tuple[str, dict[str, int]]]:
    if smoke:
        return [("tiny", dict(b=2, h=2, t=64, s=8, d=64))]
    # GLIDE base at 64 px, guided batch of 32 (64 rows): 32x32, 16x16, 8x8 feature maps; 128 text tokens
    return [
        ("base 32x32", dict(b=64, h=6, t=1024, s=128, d=64)),
        ("base 16x16", dict(b=64, h=9, t=256, s=128, d=64)),
        ("base 8x8", dict(b=64, h=12, t=64, s=128, d=64)),
    ]


def bench_attention(device: torch.device, dtype: torch.dtype, smoke: bool, iters: int) -> list[dict[str, Any]]:
    rows = []
    for label, c in attention_cases(smoke):
        g = torch.Generator(device=device).manual_seed(0)

        def make(n: int, c: dict[str, int] = c, g: torch.Generator = g) -> torch.Tensor:
            # GLIDE's layout: (B, heads, d, T) transposed, sequence dimension contiguous
            return torch.randn(c["b"], c["h"], c["d"], n, generator=g, device=device, dtype=dtype).transpose(2, 3)

        q, k, v, ke, ve = make(c["t"]), make(c["t"]), make(c["t"]), make(c["s"]), make(c["s"])
        want = attention_math(q, k, v, ke, ve).float()
        flops = 4 * c["b"] * c["h"] * c["t"] * (c["t"] + c["s"]) * c["d"]
        for backend in ("triton", "xformers", "sdpa", "math"):
            row = {"op": "attention", "case": f"{label} {str(dtype)[6:]}", "backend": backend, "unit": "TFLOP/s"}
            try:
                got = attention(q, k, v, k_extra=ke, v_extra=ve, backend=backend)
            except BackendUnavailableError as exc:
                rows.append({**row, "note": str(exc).split(": ", 2)[-1]})
                continue
            ms = 1000 * _time(partial(attention, q, k, v, k_extra=ke, v_extra=ve, backend=backend), device, iters)
            err = (got.float() - want).abs().max().item()
            rows.append({**row, "ms": ms, "throughput": flops / ms / 1e9, "max_abs_err": err})
    return rows


def bench_norm(device: torch.device, dtype: torch.dtype, smoke: bool, iters: int) -> list[dict[str, Any]]:
    rows = []
    shapes = [("tiny", (2, 64, 8, 8))] if smoke else [("base 32x32", (64, 384, 32, 32)), ("up 128x128", (16, 192, 128, 128))]
    for label, shape in shapes:
        g = torch.Generator(device=device).manual_seed(0)
        b, c = shape[:2]
        x0 = torch.randn(shape, generator=g, device=device).to(dtype)
        w, bias = torch.randn(c, device=device), torch.randn(c, device=device)
        scale, shift = torch.randn(b, 2 * c, 1, 1, generator=g, device=device).to(dtype).chunk(2, dim=1)
        for layout in ("nchw", "channels_last"):
            x = x0.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x0
            want = group_norm_torch(x, w, bias, scale=scale, shift=shift).float()
            nbytes = 2 * x.numel() * x.element_size()
            for backend in ("triton", "torch"):
                row = {"op": "group_norm_silu", "case": f"{label} {layout} {str(dtype)[6:]}", "backend": backend,
                       "unit": "GB/s"}  # fmt: skip
                try:
                    got = group_norm_silu(x, w, bias, scale=scale, shift=shift, backend=backend)
                except BackendUnavailableError as exc:
                    rows.append({**row, "note": str(exc).split(": ", 2)[-1]})
                    continue
                fn = partial(group_norm_silu, x, w, bias, scale=scale, shift=shift, backend=backend)
                ms = 1000 * _time(fn, device, iters)
                err = (got.float() - want).abs().max().item()
                rows.append({**row, "ms": ms, "throughput": nbytes / ms / 1e6, "max_abs_err": err})
    return rows


def bench_sampler(device: torch.device, smoke: bool, iters: int) -> list[dict[str, Any]]:
    rows = []
    tables = SamplerTables(torch.linspace(1e-4, 0.02, 100, dtype=torch.float64), device=device)
    cases = [("tiny ancestral", 2, 16, False)] if smoke else [("base ancestral", 32, 64, False), ("up ddim", 16, 256, True)]
    for label, b, size, is_ddim in cases:
        g = torch.Generator(device=device).manual_seed(0)
        x = torch.randn(b, 3, size, size, generator=g, device=device)
        noise = torch.randn(b, 3, size, size, generator=g, device=device)
        if is_ddim:
            mo = torch.randn(b, 6, size, size, generator=g, device=device)
            coefs = tables.row(tables.ddim(0.0), torch.tensor(50, device=device))

            def step(backend: str, mo=mo, x=x, coefs=coefs) -> torch.Tensor:
                return ddim_step(mo, x, None, coefs, backend=backend)
        else:
            mo = torch.randn(2 * b, 6, size, size, generator=g, device=device)
            coefs = tables.row(tables.ancestral, torch.tensor(50, device=device))

            def step(backend: str, mo=mo, x=x, noise=noise, coefs=coefs) -> torch.Tensor:
                return guided_ancestral_step(mo, x, noise, coefs, guidance_scale=3.0, backend=backend)

        want = step("torch")
        nbytes = (mo.numel() + 3 * x.numel()) * 4
        for backend in ("triton", "torch"):
            row = {"op": "sampler_step", "case": label, "backend": backend, "unit": "GB/s"}
            try:
                got = step(backend)
            except BackendUnavailableError as exc:
                rows.append({**row, "note": str(exc).split(": ", 2)[-1]})
                continue
            ms = 1000 * _time(partial(step, backend), device, iters)
            rows.append({**row, "ms": ms, "throughput": nbytes / ms / 1e6, "max_abs_err": (got - want).abs().max().item()})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, no result file")
    parser.add_argument("--dtype", choices=("fp16", "bf16"), nargs="+", default=None, help="default: fp16 bf16 (fp32 on CPU)")
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", default=None, help="also write the rows to this file (smoke too)")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.smoke:
        torch.set_num_threads(1)
    names = args.dtype or (["fp16", "bf16"] if device.type == "cuda" else [])
    dtypes = [{"fp16": torch.float16, "bf16": torch.bfloat16}[n] for n in names] or [torch.float32]
    iters = args.iters or (3 if args.smoke else 20)
    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for dtype in dtypes:
            rows += bench_attention(device, dtype, args.smoke, iters)
            rows += bench_norm(device, dtype, args.smoke, iters)
        rows += bench_sampler(device, args.smoke, iters)
    print_table(rows, COLUMNS)
    if args.json:
        write_json(args.json, rows, {"kernels": available_backends()})
    if args.smoke:
        print("smoke run (tiny shapes): no result file written")
    else:
        print(f"wrote {write_results(f'kernels_{device_slug()}', rows, {'kernels': available_backends()})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
