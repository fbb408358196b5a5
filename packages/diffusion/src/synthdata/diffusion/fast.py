"""Fast GLIDE sampling: half precision, fused kernels, channels_last, CUDA graphs, torch.compile.

Two pieces, each usable alone, each falling back to plain PyTorch where its fast path cannot run, and
the sampler strategy that puts them behind :class:`~synthdata.diffusion.pipeline.GlidePipeline`:

- :func:`accelerate` prepares a model in place: converts it to half precision the official way
  (:meth:`Text2ImUNet.convert_to_dtype`: norms, time embedding and output head stay float32), optionally
  channels_last, and swaps the class of every ``AttentionBlock`` / ``GroupNorm32`` for a subclass whose
  ``forward`` calls :mod:`synthdata.kernels` (flash attention over ``[text keys; image keys]`` without
  concatenation; GroupNorm + scale-shift + SiLU in one pass, fp32 statistics). Parameters, names and
  ``state_dict`` keys are unchanged (only ``__class__`` changes), so checkpoints load into either form
  and :func:`restore` undoes the swap. ``"glide"`` as a backend leaves that layer as the model has it.
- :class:`FastSampler` runs the guided ancestral / DDIM loop with a fixed batch size: the last batch is
  padded (never a new shape), the model runs on ``[cond; uncond]`` with the text embedding computed once
  per batch, and one denoising step (model forward + the fused guidance/sampler update of
  :mod:`synthdata.kernels`) is captured in a CUDA graph whose step index lives in a device buffer, so
  one capture serves every step. On the CPU (or with ``cuda_graphs=False``) the same step runs eagerly.
- :class:`FastSampling` is the pipeline's fast sampler (``GlidePipeline(..., sampler=FastSampling(32))``):
  it accelerates the pipeline's models when the pipeline is built and runs each stage with one
  :class:`FastSampler` of a fixed batch size.

Noise follows the :class:`~synthdata.diffusion.sampling.NoiseSource` protocol and is drawn exactly when
the exact loop (:func:`~synthdata.diffusion.sampling.sample_loop`) draws it, so a sample depends on its
seed only; in float32 with the ``math``/``torch`` backends the result equals the exact path to rounding.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthdata.diffusion._layers import GroupNorm32, timestep_embedding
from synthdata.diffusion.model import AttentionBlock, Text2ImUNet, TextEmbedding
from synthdata.diffusion.samplers import Sampler, Stage
from synthdata.diffusion.sampling import NoiseSource, needs_step_noise
from synthdata.diffusion.schedule import GaussianDiffusion
from synthdata.kernels import (
    GraphRunner,
    SamplerTables,
    attention,
    ddim_step,
    group_norm_silu,
    guided_ancestral_step,
    maybe_compile,
    pad_batch,
)

__all__ = [
    "FastAttentionBlock",
    "FastGroupNorm32",
    "FastOptions",
    "FastSampler",
    "FastSampling",
    "accelerate",
    "restore",
    "unet_forward",
]

log = logging.getLogger(__name__)

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# --------------------------------------------------------------------------------------------- layers
class FastGroupNorm32(GroupNorm32):
    """``GroupNorm32`` whose forward is :func:`synthdata.kernels.group_norm_silu` (same parameters)."""

    kernel_backend: str = "auto"

    def forward(self, x: Tensor, scale: Tensor | None = None, shift: Tensor | None = None) -> Tensor:
        if (scale is None) != (shift is None):  # GLIDE never does this; keep its meaning anyway
            scale = torch.zeros_like(shift) if scale is None else scale
            shift = torch.zeros_like(scale) if shift is None else shift
        return group_norm_silu(
            x, self.weight, self.bias, groups=self.num_groups, eps=self.eps, scale=scale, shift=shift,
            act=self.act, backend=self.kernel_backend,
        )  # fmt: skip


class FastAttentionBlock(AttentionBlock):
    """``AttentionBlock`` calling :func:`synthdata.kernels.attention` with the text keys/values passed
    separately (no ``torch.cat``) and the output written in place in the layout the projection reads.

    A channels_last input takes a token-major path (1x1 convolutions as ``F.linear`` on ``(B, T, C)``,
    head dim contiguous), otherwise GLIDE's own channel-major layout is kept (sequence dim contiguous).
    """

    kernel_backend: str = "auto"

    def forward(self, x: Tensor, encoder_out: Tensor | None = None) -> Tensor:
        b, c, *spatial = x.shape
        heads = self.num_heads
        ch = c // heads
        length = math.prod(spatial)
        h = self.norm(x)
        token_major = h.dim() == 4 and not h.is_contiguous() and h.is_contiguous(memory_format=torch.channels_last)
        if token_major:
            seq = h.permute(0, 2, 3, 1).reshape(b, length, c)  # a view for channels_last
            qkv = F.linear(seq, self.qkv.weight.squeeze(-1), self.qkv.bias)  # (b, T, 3c), per head [q|k|v]
            q, k, v = qkv.view(b, length, heads, 3 * ch).transpose(1, 2).split(ch, dim=-1)
            out = torch.empty((b, length, heads, ch), dtype=q.dtype, device=q.device).transpose(1, 2)
        else:
            qkv = self.qkv(h.reshape(b, c, length))  # (b, 3c, T)
            q, k, v = qkv.reshape(b, heads, 3 * ch, length).transpose(-1, -2).split(ch, dim=-1)
            out = torch.empty((b, heads, ch, length), dtype=q.dtype, device=q.device).transpose(-1, -2)
        ek = ev = None
        if encoder_out is not None:
            ekv = self.encoder_kv(encoder_out)  # (b, 2c, S), per head [k|v]
            ek, ev = ekv.reshape(b, heads, 2 * ch, -1).transpose(-1, -2).split(ch, dim=-1)
        attention(q, k, v, k_extra=ek, v_extra=ev, backend=self.kernel_backend, out=out)
        if token_major:
            proj = F.linear(out.transpose(1, 2).reshape(b, length, c), self.proj_out.weight.squeeze(-1), self.proj_out.bias)
            return x + proj.view(b, *spatial, c).permute(0, 3, 1, 2)
        return x + self.proj_out(out.transpose(-1, -2).reshape(b, c, length)).reshape(b, c, *spatial)


_SWAPS: tuple[tuple[type[nn.Module], type[nn.Module]], ...] = (
    (AttentionBlock, FastAttentionBlock),
    (GroupNorm32, FastGroupNorm32),
)


def accelerate(
    model: Text2ImUNet,
    *,
    dtype: torch.dtype | str | None = None,
    attention: str = "auto",
    norm: str = "auto",
    channels_last: bool = False,
) -> Text2ImUNet:
    """Prepare ``model`` in place for fast sampling and return it.

    ``dtype``: ``None`` keeps the model's; fp16/bf16 (or ``"fp16"``/``"bf16"``) convert as the official
    ``convert_to_fp16`` (normalisation stays float32). ``attention`` / ``norm``: a
    :mod:`synthdata.kernels` backend name (``"auto"``, ``"triton"``, ``"sdpa"``, ``"math"``, ...) for the
    swapped layers, or ``"glide"`` to keep the model's own layer. ``channels_last`` converts the
    convolution weights (inputs are converted by :class:`FastSampler`). Text-transformer layers are not
    touched (the text is encoded once per batch).
    """
    if dtype is not None:
        dt = _DTYPES[dtype] if isinstance(dtype, str) else dtype
        if dt != model.dtype:
            model.convert_to_dtype(dt)
    wanted = {FastAttentionBlock: attention, FastGroupNorm32: norm}
    counts = {FastAttentionBlock: 0, FastGroupNorm32: 0}
    for name, module in model.named_modules():
        if name.startswith(("transformer", "final_ln")):
            continue
        for base, fast in _SWAPS:
            if isinstance(module, base):
                backend = wanted[fast]
                if backend == "glide":
                    module.__class__ = base
                else:
                    module.__class__ = fast
                    module.kernel_backend = backend
                    counts[fast] += 1
                break
    if channels_last:
        model.to(memory_format=torch.channels_last)
    log.info(
        "accelerate: %s, %d attention blocks -> kernels (%s), %d norms -> kernels (%s), channels_last=%s",
        str(model.dtype).replace("torch.", ""), counts[FastAttentionBlock], attention,
        counts[FastGroupNorm32], norm, channels_last,
    )  # fmt: skip
    return model


def restore(model: nn.Module) -> nn.Module:
    """Undo :func:`accelerate`'s layer swap (dtype and memory format are left as they are)."""
    for module in model.modules():
        for base, fast in _SWAPS:
            if type(module) is fast:
                module.__class__ = base
                module.__dict__.pop("kernel_backend", None)
    return model


def unet_forward(
    model: Text2ImUNet,
    x: Tensor,
    emb: Tensor,
    xf_out: Tensor | None,
    *,
    channels_last: bool = False,
    **inputs: Tensor,
) -> Tensor:
    """``model(x, t, text_emb=...)`` with the conditioning vector ``emb`` given instead of ``t``.

    ``emb`` is ``time_embed(timestep_embedding(t)) + xf_proj`` (float32, one row per row of ``x``): the
    sampler precomputes the time part of every step once, so a captured step does no host work (the
    model's own sinusoidal embedding builds its frequencies on the CPU, which a CUDA graph cannot
    replay). The UNet itself is :meth:`Text2ImUNet.trunk`, as in :meth:`Text2ImUNet.forward`.
    """
    x = model.prepare_input(x, **inputs)
    fmt = torch.channels_last if channels_last else torch.preserve_format
    return model.trunk(x, emb, xf_out, memory_format=fmt)


# --------------------------------------------------------------------------------------------- sampler
@dataclass(frozen=True, kw_only=True, slots=True)
class FastOptions:
    """How :class:`FastSampler` runs its step. The defaults are the fast choices with fallbacks.

    ``sampler``: the fused step's backend (``"auto"``, ``"triton"``, ``"torch"``). ``cuda_graphs``: capture
    one step per input shape (CUDA only; eager elsewhere, logged). ``compile``: a ``torch.compile`` mode
    for the step (``None`` off); with ``"reduce-overhead"``/``"max-autotune"`` torch makes its own CUDA
    graphs, so ours are off. ``channels_last``: ``None`` = on CUDA with a half-precision model.
    """

    sampler: str = "auto"
    cuda_graphs: bool = True
    compile: str | None = None
    channels_last: bool | None = None
    warmup: int = 2


def _pad_rows(t: Tensor, rows: int) -> Tensor:
    return pad_batch(t, rows, mode="edge")  # copies of a real row stay finite


class FastSampler:
    """The GLIDE sampling loop with a fixed batch size, fused step and (on CUDA) a captured step.

    ``model`` should be prepared with :func:`accelerate` (any model works). ``guidance_scale`` ``None``:
    no guidance (the upsampler); else the text embedding given to :meth:`__call__` holds ``[cond; uncond]``
    (2n rows) and the model runs on ``[x; x]``. ``method``: ``"ancestral"`` (learned-range variance) or
    ``"ddim"`` (``eta``). Calls with up to ``batch_size`` rows are padded to it.
    """

    def __init__(
        self,
        model: Text2ImUNet,
        diffusion: GaussianDiffusion,
        *,
        batch_size: int,
        guidance_scale: float | None = None,
        method: Literal["ancestral", "ddim"] = "ancestral",
        eta: float = 0.0,
        clip_denoised: bool = True,
        options: FastOptions | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if method not in ("ancestral", "ddim"):
            raise ValueError(f"unknown sampling method {method!r}; use 'ancestral' or 'ddim'")
        self.model = model
        self.diffusion = diffusion
        self.batch_size = int(batch_size)
        self.guidance_scale = None if guidance_scale is None else float(guidance_scale)
        self.method = method
        self.eta = float(eta)
        self.clip_denoised = clip_denoised
        self.options = options or FastOptions()
        self.device = next(model.parameters()).device
        cl = self.options.channels_last
        self.channels_last = (self.device.type == "cuda" and model.dtype != torch.float32) if cl is None else cl
        tables = SamplerTables(diffusion.betas, device=self.device)
        self._table = tables.ddim(self.eta) if method == "ddim" else tables.ancestral
        timesteps = torch.tensor(diffusion.timestep_map, dtype=torch.long, device=self.device)
        with torch.no_grad():  # (num_steps, 4 * model_channels) fp32: the time part of every step's emb
            self._time_emb = model.time_embed(timestep_embedding(timesteps, model.model_channels)).float()
        self._runners: dict[Any, GraphRunner] = {}
        compile_mode = self.options.compile
        own_graphs = compile_mode not in ("reduce-overhead", "max-autotune")
        self._graphs = self.options.cuda_graphs and own_graphs
        self._step_fn = maybe_compile(self._step, compile_mode)

    # the step: model on [x; x] (or x), then the fused update; every input is a fixed-shape tensor
    def _step(self, x: Tensor, i: Tensor, noise: Tensor | None, xf_proj: Tensor | None, xf_out: Tensor | None,
              inputs: Mapping[str, Tensor]) -> Tensor:  # fmt: skip
        guided = self.guidance_scale is not None
        rows = 2 * x.shape[0] if guided else x.shape[0]
        emb = torch.index_select(self._time_emb, 0, i).expand(rows, -1)
        if xf_proj is not None:
            emb = emb + xf_proj.to(emb)
        xin = torch.cat([x, x]) if guided else x
        if guided:
            inputs = {k: torch.cat([v, v]) for k, v in inputs.items()}
        out = unet_forward(self.model, xin, emb, xf_out, channels_last=self.channels_last, **inputs)
        coefs = SamplerTables.row(self._table, i)
        step = ddim_step if self.method == "ddim" else guided_ancestral_step
        return step(
            out.contiguous(), x, noise, coefs, guidance_scale=self.guidance_scale,
            clip_denoised=self.clip_denoised, backend=self.options.sampler,
        )  # fmt: skip

    def _runner(self, x: Tensor, with_noise: bool, text: TextEmbedding | None, inputs: dict[str, Tensor]) -> GraphRunner:
        key = (
            tuple(x.shape), with_noise, None if text is None else (tuple(text.xf_proj.shape), tuple(text.xf_out.shape)),
            tuple((k, tuple(v.shape), v.dtype) for k, v in sorted(inputs.items())),
        )  # fmt: skip
        runner = self._runners.get(key)
        if runner is None:
            names = sorted(inputs)
            static = [
                torch.zeros_like(x, memory_format=torch.contiguous_format),
                torch.zeros(1, dtype=torch.long, device=self.device),
                torch.zeros_like(x, memory_format=torch.contiguous_format) if with_noise else None,
                None if text is None else text.xf_proj.clone(),
                None if text is None else text.xf_out.clone(),
                *(inputs[k].clone() for k in names),
            ]

            def fn(x_, i_, noise_, proj_, out_, *extra):
                return self._step_fn(x_, i_, noise_, proj_, out_, dict(zip(names, extra, strict=True)))

            runner = GraphRunner(fn, static, enabled=self._graphs, warmup=self.options.warmup, name="glide step")
            self._runners[key] = runner
            log.info("FastSampler: new %s step for shape %s (%d so far)", runner.mode, tuple(x.shape), len(self._runners))
        return runner

    @torch.no_grad()
    def __call__(
        self,
        x: Tensor,
        text_emb: TextEmbedding | None,
        *,
        noise: NoiseSource | None = None,
        start: int | None = None,
        **inputs: Tensor,
    ) -> Tensor:
        """Denoise ``x`` (n rows, n <= batch_size) from respaced step ``start`` (default the last) to x0.

        ``text_emb``: n rows (or 1, broadcast) without guidance, ``[cond (n); uncond (n or 1)]`` with it;
        ``inputs`` (e.g. ``low_res``): n rows. Returns float32 (n, C, H, W) on the model's device.
        """
        n = x.shape[0]
        if not 1 <= n <= self.batch_size:
            raise ValueError(f"FastSampler: {n} rows for a sampler of batch_size {self.batch_size}")
        d = self.diffusion
        start = d.num_timesteps - 1 if start is None else int(start)
        if not 0 <= start < d.num_timesteps:
            raise ValueError(f"start step {start} outside 0..{d.num_timesteps - 1}")
        rows = self.batch_size
        text = self._padded_text(text_emb, n, rows)
        padded_inputs = {k: _pad_rows(v.to(self.device), rows) for k, v in inputs.items()}
        state = _pad_rows(x.to(self.device, torch.float32), rows).contiguous()
        steps = [(i, needs_step_noise(self.method, self.eta, i)) for i in range(start, -1, -1)]
        with_noise = any(noisy for _, noisy in steps)
        if with_noise and noise is None:
            raise ValueError(f"{self.method} sampling needs a noise source")
        runner = self._runner(state, with_noise, text, padded_inputs)
        x_buf, i_buf, noise_buf, proj_buf, out_buf, *extra_bufs = runner.static_inputs
        x_buf.copy_(state)
        if text is not None:
            proj_buf.copy_(text.xf_proj)
            out_buf.copy_(text.xf_out)
        for buf, k in zip(extra_bufs, sorted(padded_inputs), strict=True):
            buf.copy_(padded_inputs[k])
        if noise_buf is not None:
            noise_buf[n:].zero_()  # the padding rows get no noise, whatever an earlier call left there
        for step_n, (i, noisy) in enumerate(steps):
            i_buf.fill_(i)
            if noise_buf is not None:
                if noisy:
                    noise_buf[:n].copy_(noise.step(step_n, (n, *x.shape[1:]), self.device))  # type: ignore[union-attr]
                else:
                    noise_buf[:n].zero_()
            x_buf.copy_(runner.replay())
        return x_buf[:n].clone()

    def _padded_text(self, text: TextEmbedding | None, n: int, rows: int) -> TextEmbedding | None:
        if text is None:
            return None
        if self.guidance_scale is None:
            t = text.expand(n) if len(text) == 1 else text
            if len(t) != n:
                raise ValueError(f"FastSampler: text embedding has {len(t)} rows for {n} samples")
            return TextEmbedding(_pad_rows(t.xf_proj, rows), _pad_rows(t.xf_out, rows))
        if len(text) not in (2 * n, n + 1):
            raise ValueError(f"FastSampler: guided sampling needs [cond ({n}); uncond ({n} or 1)] text rows, got {len(text)}")
        cond, uncond = text.index(slice(0, n)), text.index(slice(n, len(text)))
        uncond = uncond.expand(n) if len(uncond) == 1 else uncond
        return TextEmbedding(
            torch.cat([_pad_rows(cond.xf_proj, rows), _pad_rows(uncond.xf_proj, rows)]),
            torch.cat([_pad_rows(cond.xf_out, rows), _pad_rows(uncond.xf_out, rows)]),
        )


# --------------------------------------------------------------------------------------------- strategy
class FastSampling(Sampler):
    """The fast sampler of :class:`~synthdata.diffusion.pipeline.GlidePipeline` (``sampler=FastSampling(...)``
    or ``sampler="fast"``): the :mod:`~synthdata.diffusion.samplers` signature run by :class:`FastSampler`.

    The batch size is fixed for the sampler's life (``None``: by the first call): the pipeline hands it
    rows in chunks of ``batch_size`` and a short chunk is padded, so there is one :class:`FastSampler` per
    stage (model, respacing, guidance, method) and each keeps one step shape, i.e. at most one CUDA-graph
    capture per model. :meth:`prepare`, called by the pipeline once per model when it is built,
    accelerates that model in place (:func:`accelerate` with ``attention`` / ``norm``); the pipeline's
    dtype is kept. ``options.channels_last=None`` means on for a half-precision model on CUDA. One
    instance serves one pipeline (preparing a second base or upsampler model raises ``ValueError``).
    ``progress`` is accepted and ignored.
    """

    name = "fast"

    def __init__(
        self,
        batch_size: int | None = None,
        *,
        attention: str = "auto",
        norm: str = "auto",
        options: FastOptions | None = None,
    ):
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = None if batch_size is None else int(batch_size)
        self.attention, self.norm = attention, norm
        self.options = options or FastOptions()
        self._samplers: dict[tuple[str, str, float | None, str], FastSampler] = {}
        self._prepared: set[str] = set()

    @property
    def channels_last(self) -> bool:
        """Whether the models run channels_last (resolved by the first :meth:`prepare`)."""
        return bool(self.options.channels_last)

    def prepare(self, model: Text2ImUNet) -> Text2ImUNet:
        role = "upsample" if model.options.super_res else "base"
        if role in self._prepared:
            raise ValueError(f"this FastSampling already serves another pipeline's {role} model; give each "
                             "pipeline its own (FastSampling(...) or sampler='fast')")  # fmt: skip
        self._prepared.add(role)
        if self.options.channels_last is None:
            half = model.dtype != torch.float32
            on = next(model.parameters()).device.type == "cuda" and half
            self.options = replace(self.options, channels_last=on)
        return accelerate(model, attention=self.attention, norm=self.norm, channels_last=self.channels_last)

    def chunks(self, n: int) -> list[slice]:
        if self.batch_size is None:
            self.batch_size = n
        return [slice(i, min(i + self.batch_size, n)) for i in range(0, n, self.batch_size)]

    def describe(self) -> dict[str, Any]:
        """``sampler: "fast"`` and the settings (options, batch size, attention and norm backends)."""
        settings = {"batch_size": self.batch_size, "attention": self.attention, "norm": self.norm}
        return {"sampler": "fast", "fast": asdict(self.options) | settings}

    def _sampler(self, stage: Stage) -> FastSampler:
        sampler = self._samplers.get(stage.key)
        if sampler is None:
            assert self.batch_size is not None  # set by chunks() or sample()
            sampler = self._samplers[stage.key] = FastSampler(
                stage.model, stage.diffusion, batch_size=self.batch_size, guidance_scale=stage.guidance_scale,
                method=stage.method, eta=stage.eta, clip_denoised=stage.clip_denoised, options=self.options,  # type: ignore[arg-type]
            )  # fmt: skip
        return sampler

    def sample(self, stage: Stage, x: Tensor, text: TextEmbedding, noise: NoiseSource | None, start: int | None,
               progress: bool, inputs: Mapping[str, Tensor]) -> Tensor:  # fmt: skip
        if self.batch_size is None:
            self.batch_size = x.shape[0]
        return self._sampler(stage)(x, text, noise=noise, start=start, **inputs)
