"""Check synthdata's GLIDE against a directory of reference outputs of the official implementation.

The directory format is described in ``tests/data/glide_reference/README.md``. Everything is discovered from
the files present: ``tokenizer_cases.json``, ``schedules.json``, ``manifest_*.json`` and the cases of
``cases.json`` (tensors ``<case>.<name>`` in ``cases.safetensors``). Models are built only from the options
stored there; an entry of ``cases.json`` with a ``<name>.safetensors`` beside it is a model (its state dict).

A case's kind follows from its tensors:

- ``out`` → a forward: ``x``, ``t``, ``tokens``/``mask`` (else those of a sampling case of the same model),
  plus any model input (``low_res``, ``inpaint_image``, ``inpaint_mask``); limit 1e-4.
- ``ref_image`` → Real Guidance: ``q_noise`` noises it to respaced step ``refer_img_iters - 1``, then guided
  ancestral steps with ``step_noise``; tokens/options from a guided case of the same model when absent.
- ``initial_noise`` → (guided) ancestral sampling with ``step_noise``.
- ``noise`` → DDIM (``eta``, ``step_noise`` if eta > 0) from ``noise`` (temperature applied), ``low_res``.

Outputs ``samples`` use the case's ``clip_denoised`` (default True) and ``samples_noclip`` the same loop
without clipping; whole loops have the limit 1e-3. Errors are relative: ‖out − ref‖ / ‖ref‖.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from synthdata.diffusion.model import Text2ImUNet, create_model
from synthdata.diffusion.options import GlideOptions, options_from
from synthdata.diffusion.sampling import TensorNoise, model_fn_for, real_guidance_sample, sample_loop
from synthdata.diffusion.schedule import GaussianDiffusion
from synthdata.diffusion.tokenizer import get_tokenizer

__all__ = ["FORWARD_LIMIT", "LOOP_LIMIT", "CheckResult", "ReferenceError", "check_reference", "format_table"]

FORWARD_LIMIT = 1e-4
LOOP_LIMIT = 1e-3
SCHEDULE_LIMIT = 1e-9
_INPUT_NAMES = ("low_res", "inpaint_image", "inpaint_mask")


class ReferenceError(RuntimeError):
    """The reference directory itself is missing or unreadable."""


@dataclass
class CheckResult:
    case: str
    quantity: str
    error: float | None  # relative error (or mismatch count); None when the case could not run
    limit: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.error is not None and math.isfinite(self.error) and self.error <= self.limit


def rel_error(out: Tensor, ref: Tensor) -> float:
    if tuple(out.shape) != tuple(ref.shape):
        raise ValueError(f"shape {tuple(out.shape)} != reference {tuple(ref.shape)}")
    out, ref = out.double(), ref.double()
    denom = ref.norm()
    diff = (out - ref).norm()
    return float(diff / denom) if denom > 0 else float(diff)


# ------------------------------------------------------------------------------------------ context
class _Reference:
    def __init__(self, directory: Path):
        self.dir = directory
        self.cases: dict[str, Any] = {}
        self.tensors: dict[str, Tensor] = {}
        self._models: dict[tuple[str, str], Text2ImUNet] = {}
        cases_path = directory / "cases.json"
        if cases_path.exists():
            self.cases = json.loads(cases_path.read_text())
            if not isinstance(self.cases, dict):
                raise ReferenceError(f"{cases_path} does not hold a JSON object")
        tensors_path = directory / "cases.safetensors"
        if tensors_path.exists():
            from safetensors.torch import load_file

            self.tensors = load_file(str(tensors_path))

    def model_entries(self) -> dict[str, GlideOptions]:
        out = {}
        for name, entry in self.cases.items():
            if isinstance(entry, dict) and "options" in entry and (self.dir / f"{name}.safetensors").exists():
                out[name] = options_from(entry["options"])
        return out

    def case_names(self) -> list[str]:
        """Entries of ``cases.json``, then cases that exist only as tensors (``<case>.<name>``)."""
        names = list(self.cases)
        for key in self.tensors:
            prefix = key.split(".", 1)[0]
            if prefix not in names:
                names.append(prefix)
        return names

    def case_tensors(self, case: str) -> dict[str, Tensor]:
        prefix = case + "."
        return {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def model_for(self, case: str, tensors: Mapping[str, Tensor]) -> tuple[Text2ImUNet, GlideOptions, str]:
        """(model, the options it was built from, model entry name) for a case."""
        entries = self.model_entries()
        if not entries:
            raise ValueError("no model weights (<name>.safetensors beside an entry with options) in the directory")
        entry = self.cases.get(case, {})
        opts = options_from(entry["options"]) if isinstance(entry, dict) and "options" in entry else None
        name = None
        if opts is not None:
            same = [n for n, o in entries.items() if o.replace(timestep_respacing="") == opts.replace(timestep_respacing="")]
            name = same[0] if same else None
        if name is None:
            super_res = "low_res" in tensors if opts is None else opts.super_res
            inpaint = "inpaint_mask" in tensors if opts is None else opts.inpaint
            kind = [n for n, o in entries.items() if o.super_res == super_res and o.inpaint == inpaint]
            if not kind:
                raise ValueError(f"no model in the directory fits case {case!r}")
            name = kind[0]
        if opts is None:
            opts = entries[name]
        key = (name, json.dumps(opts.replace(timestep_respacing="").to_dict(), sort_keys=True))
        if key not in self._models:
            from safetensors.torch import load_file

            model = create_model(opts)
            model.load_state_dict(load_file(str(self.dir / f"{name}.safetensors")), strict=True)
            self._models[key] = model.eval()
        return self._models[key], opts, name

    def related(self, case: str, model_name: str, want: Sequence[str]) -> tuple[str, dict[str, Tensor]] | None:
        """Another case of the same model that holds all tensors in ``want`` (sampling cases first)."""
        for other in self.case_names():
            if other == case:
                continue
            t = self.case_tensors(other)
            if not all(w in t for w in want):
                continue
            try:
                _, _, name = self.model_for(other, t)
            except ValueError:
                continue
            if name == model_name:
                return other, t
        return None


# ------------------------------------------------------------------------------------------ checks
def _check_tokenizer(path: Path) -> list[CheckResult]:
    data = json.loads(path.read_text())
    tok = get_tokenizer()
    results = []
    vocab_err = int(data.get("n_vocab", tok.n_vocab) != tok.n_vocab) + int(
        data.get("end_token", tok.end_token) != tok.end_token
    )
    results.append(CheckResult("tokenizer", "n_vocab/end_token", float(vocab_err), 0.0))
    for n, case in enumerate(data.get("cases", [])):
        label = f"tokenizer[{n}]"
        text = case["text"]
        ids = tok.encode(text)
        checks: list[tuple[str, list[Any], list[Any]]] = []
        if "ids" in case:
            checks.append(("ids", ids, case["ids"]))
        for key, value in case.items():
            m = re.fullmatch(r"(padded|mask)_(\d+)", key)
            if m:
                padded, mask = tok.padded_tokens_and_mask(ids, int(m.group(2)))
                checks.append((key, padded if m.group(1) == "padded" else mask, value))
        for quantity, got, want in checks:
            mismatches = sum(a != b for a, b in zip(got, want, strict=False)) + abs(len(got) - len(want))
            results.append(CheckResult(label, quantity, float(mismatches), 0.0, note=repr(text[:30])))
    return results


def _check_schedules(path: Path, ref: _Reference) -> list[CheckResult]:
    data = json.loads(path.read_text())
    entries = ref.model_entries() if ref.cases else {}
    results = []
    for key, entry in data.items():
        kind, _, respacing = key.partition("/")
        steps = int(entry.get("diffusion_steps", 0)) or next(
            (o.diffusion_steps for n, o in entries.items() if o.super_res == (kind.startswith("up"))), 1000
        )
        try:
            d = GaussianDiffusion.from_schedule(entry["noise_schedule"], steps, respacing)
            map_err = float(sum(a != b for a, b in zip(d.timestep_map, entry["timestep_map"], strict=False)))
            map_err += abs(len(d.timestep_map) - len(entry["timestep_map"]))
            results.append(CheckResult(f"schedule {key}", "timestep_map", map_err, 0.0))
            want = np.asarray(entry["betas"], dtype=np.float64)
            err = float(np.linalg.norm(d.betas - want) / np.linalg.norm(want)) if d.betas.shape == want.shape else math.inf
            results.append(CheckResult(f"schedule {key}", "betas", err, SCHEDULE_LIMIT))
        except Exception as exc:
            results.append(CheckResult(f"schedule {key}", "betas", None, SCHEDULE_LIMIT, note=_why(exc)))
    return results


def _check_manifest(path: Path) -> list[CheckResult]:
    data = json.loads(path.read_text())
    label = path.stem
    try:
        model = create_model(data["options"], device="meta")
    except Exception as exc:
        return [CheckResult(label, "keys+shapes", None, 0.0, note=_why(exc))]
    state = model.state_dict()
    want = data["state_dict"]
    missing = sorted(set(want) - set(state))
    unexpected = sorted(set(state) - set(want))
    shapes = [k for k in want if k in state and list(state[k].shape) != list(want[k]["shape"])]
    note = ", ".join(
        f"{what}: {items[:3]}" for what, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)) if items
    )
    results = [CheckResult(label, "keys+shapes", float(len(missing) + len(unexpected) + len(shapes)), 0.0, note=note)]
    if "num_parameters" in data:
        n = sum(p.numel() for p in model.parameters())
        results.append(CheckResult(label, "num_parameters", float(abs(n - data["num_parameters"])), 0.0))
    dtypes = {k: v.get("dtype_after_fp16") for k, v in want.items() if isinstance(v, dict)}
    if any(dtypes.values()) and not missing and not unexpected:
        model.convert_to_dtype(torch.float16)
        wrong = [k for k, v in model.state_dict().items() if dtypes.get(k) and str(v.dtype).removeprefix("torch.") != dtypes[k]]
        results.append(CheckResult(label, "dtype_after_fp16", float(len(wrong)), 0.0, note=", ".join(wrong[:3])))
    return results


def _tokens_for(
    ref: _Reference, case: str, t: dict[str, Tensor], model_name: str
) -> tuple[Tensor | None, Tensor | None]:
    if "tokens" in t:
        return t["tokens"], t.get("mask")
    rel = ref.related(case, model_name, ["tokens"])
    if rel is None:
        return None, None
    return rel[1]["tokens"], rel[1].get("mask")


def _forward(ref: _Reference, case: str, t: dict[str, Tensor]) -> list[CheckResult]:
    model, _, name = ref.model_for(case, t)
    tokens, mask = _tokens_for(ref, case, t, name)
    b = t["x"].shape[0]
    inputs = {k: t[k] for k in _INPUT_NAMES if k in t}
    with torch.no_grad():
        text_emb = None
        if model.xf_width:
            if tokens is None:
                raise ValueError("no tokens for this forward")
            tokens, mask = tokens[:b], (mask[:b] if mask is not None else None)
            text_emb = model.encode_text(tokens, mask)
        out = model(t["x"], t["t"], text_emb=text_emb, **inputs)
    return [CheckResult(case, "out", rel_error(out, t["out"]), FORWARD_LIMIT)]


def _respacing(entry: Mapping[str, Any], opts: GlideOptions) -> str:
    return str(entry.get("timestep_respacing", opts.timestep_respacing))


def _outputs(t: Mapping[str, Tensor], clip: bool) -> list[tuple[str, bool]]:
    return [(k, clip if k == "samples" else False) for k in ("samples", "samples_noclip") if k in t]


def _sampling(ref: _Reference, case: str, t: dict[str, Tensor], *, method: str) -> list[CheckResult]:
    """A whole sampling loop (ancestral from ``initial_noise``, or DDIM with ``eta`` from ``noise``)."""
    entry = ref.cases.get(case, {})
    model, opts, name = ref.model_for(case, t)
    diffusion = GaussianDiffusion.from_schedule(opts.noise_schedule, opts.diffusion_steps, _respacing(entry, opts))
    eta = float(entry.get("eta", 0.0)) if method == "ddim" else 0.0
    start_noise = t["initial_noise"] if method == "ancestral" else t["noise"]
    scale = entry.get("guidance_scale")
    tokens, mask = _tokens_for(ref, case, t, name)
    inputs = {k: t[k] for k in _INPUT_NAMES if k in t}
    results = []
    with torch.no_grad():
        text_emb = model.encode_text(tokens, mask) if model.xf_width and tokens is not None else None
        fn = model_fn_for(model, text_emb, guidance_scale=scale, **inputs)
        for key, clip in _outputs(t, bool(entry.get("clip_denoised", True))):
            noise = TensorNoise(start_noise, t.get("step_noise"))
            out = sample_loop(
                diffusion, fn, start_noise, noise=noise, method=method, eta=eta, clip_denoised=clip
            )
            results.append(CheckResult(case, key, rel_error(out, t[key]), LOOP_LIMIT))
    return results


def _real_guidance(ref: _Reference, case: str, t: dict[str, Tensor]) -> list[CheckResult]:
    entry = ref.cases.get(case, {})
    own_options = isinstance(entry, dict) and "options" in entry
    if not own_options or "tokens" not in t:
        # "same model and tokens as" a guided sampling case of the base model
        for other, ot in ((o, ref.case_tensors(o)) for o in ref.case_names() if o != case):
            if "initial_noise" in ot and "tokens" in ot and "low_res" not in ot:
                t = {**{k: v for k, v in ot.items() if k in ("tokens", "mask")}, **t}
                if not own_options:
                    other_entry = ref.cases.get(other, {})
                    entry = {**{k: v for k, v in other_entry.items() if k != "note"}, **entry}
                break
    model, opts, _ = _model_from_entry(ref, case, entry, t)
    diffusion = GaussianDiffusion.from_schedule(opts.noise_schedule, opts.diffusion_steps, _respacing(entry, opts))
    k = int(entry["refer_img_iters"])
    scale = entry.get("guidance_scale")
    inputs = {k_: t[k_] for k_ in _INPUT_NAMES if k_ in t}
    results = []
    with torch.no_grad():
        text_emb = model.encode_text(t["tokens"], t.get("mask")) if model.xf_width else None
        fn = model_fn_for(model, text_emb, guidance_scale=scale, **inputs)
        for key, clip in _outputs(t, bool(entry.get("clip_denoised", True))):
            noise = TensorNoise(t["q_noise"], t.get("step_noise"))
            out = real_guidance_sample(
                diffusion, fn, t["ref_image"], k, noise=noise, batch=t["q_noise"].shape[0], clip_denoised=clip
            )
            results.append(CheckResult(case, key, rel_error(out, t[key]), LOOP_LIMIT))
    return results


def _model_from_entry(
    ref: _Reference, case: str, entry: Mapping[str, Any], t: Mapping[str, Tensor]
) -> tuple[Text2ImUNet, GlideOptions, str]:
    saved = ref.cases.get(case)
    ref.cases[case] = dict(entry)
    try:
        return ref.model_for(case, t)
    finally:
        if saved is None:
            ref.cases.pop(case, None)
        else:
            ref.cases[case] = saved


def _case_runner(t: Mapping[str, Tensor]) -> tuple[str, Callable[[_Reference, str, dict[str, Tensor]], list[CheckResult]]] | None:
    if "out" in t:
        return "out", _forward
    if "ref_image" in t:
        return "samples", _real_guidance
    if "initial_noise" in t:
        return "samples", functools.partial(_sampling, method="ancestral")
    if "noise" in t:
        return "samples", functools.partial(_sampling, method="ddim")
    return None


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:160]


def check_reference(directory: str | Path, *, cases: Iterable[str] | None = None) -> list[CheckResult]:
    """Run every check found in ``directory`` (or only the named ``cases``: case names from ``cases.json``,
    ``tokenizer``, ``schedules``, ``manifest_base`` ...). Raises :class:`ReferenceError` when the directory
    is missing or holds no reference file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ReferenceError(f"{directory} is not a directory")
    wanted = set(cases) if cases is not None else None

    def selected(name: str) -> bool:
        return wanted is None or name in wanted

    known = ["cases.json", "tokenizer_cases.json", "schedules.json", *sorted(p.name for p in directory.glob("manifest_*.json"))]
    if not any((directory / k).exists() for k in known):
        raise ReferenceError(f"{directory} holds no GLIDE reference files (cases.json, tokenizer_cases.json, ...)")
    try:
        ref = _Reference(directory)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ReferenceError(f"cannot read the reference in {directory}: {_why(exc)}") from exc

    results = _check_files(directory, ref, selected)
    models = set(ref.model_entries())
    if (directory / "cases.json").exists() and not (directory / "cases.safetensors").exists():
        results.append(CheckResult("cases", "cases.safetensors", None, 0.0, note="cases.safetensors is missing"))
    results += [r for case in ref.case_names() if selected(case) for r in _check_case(ref, case, models)]
    if wanted is not None:
        ran = {r.case.split("[")[0].split(" ")[0] for r in results}
        for name in sorted(wanted - ran - {"schedules"}):
            results.append(CheckResult(name, "?", None, 0.0, note="no such case in the directory"))
    return results


def _check_files(directory: Path, ref: _Reference, selected: Callable[[str], bool]) -> list[CheckResult]:
    """The checks of the tokenizer, the schedules and the checkpoint manifests, where present."""
    checks: list[tuple[str, str, float, Path, Callable[[], list[CheckResult]]]] = []
    tok, sched = directory / "tokenizer_cases.json", directory / "schedules.json"
    checks.append(("tokenizer", "cases", 0.0, tok, lambda: _check_tokenizer(tok)))
    checks.append(("schedules", "betas", SCHEDULE_LIMIT, sched, lambda: _check_schedules(sched, ref)))
    for manifest in sorted(directory.glob("manifest_*.json")):
        checks.append((manifest.stem, "keys+shapes", 0.0, manifest, functools.partial(_check_manifest, manifest)))
    results: list[CheckResult] = []
    for name, quantity, limit, path, run in checks:
        if path.exists() and selected(name):
            try:
                results += run()
            except Exception as exc:
                results.append(CheckResult(name, quantity, None, limit, note=_why(exc)))
    return results


def _check_case(ref: _Reference, case: str, models: set[str]) -> list[CheckResult]:
    """One case of ``cases.json``: run by the checker its tensors call for (nothing for a model entry)."""
    entry = ref.cases.get(case, {})
    t = ref.case_tensors(case)
    runner = _case_runner(t)
    if runner is None:
        if case in models or (isinstance(entry, dict) and set(entry) <= {"options", "note"}):
            return []  # a model's options, not a case
        return [CheckResult(case, "?", None, 0.0, note="no tensors this checker knows for this case")]
    quantity, run = runner
    limit = FORWARD_LIMIT if run is _forward else LOOP_LIMIT
    try:
        return run(ref, case, t)
    except Exception as exc:
        return [CheckResult(case, quantity, None, limit, note=_why(exc))]


def format_table(results: Sequence[CheckResult]) -> str:
    rows = [("case", "quantity", "rel error", "limit", "ok")]
    for r in results:
        err = "n/a" if r.error is None else f"{r.error:.3e}"
        status = "ok" if r.ok else "FAIL"
        if r.note and not r.ok:
            status += f"  {r.note}"
        rows.append((r.case, r.quantity, err, f"{r.limit:.0e}", status))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4] for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
