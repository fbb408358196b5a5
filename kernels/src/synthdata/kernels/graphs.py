"""CUDA-graph runner with a fixed-shape contract, batch padding helpers, and the torch.compile switch.

:class:`GraphRunner` (or :func:`capture`) records ``fn(*static_inputs)`` once on CUDA (warm-up on a side
stream, then capture) and replays it: each call copies its arguments into the static input buffers,
replays, and returns the static outputs (overwritten by the next call). Shapes, dtypes and devices are
fixed at capture: a call with anything else raises :class:`GraphShapeError` instead of re-recording;
callers pad the last batch with :func:`pad_batch` and cut it with :func:`unpad_batch`. Without CUDA
(or with CPU inputs, or ``enabled=False``) the runner calls ``fn`` eagerly with the same contract, and
logs why once. Capture errors are raised, never swallowed.

``fn`` is run ``warmup`` times before capture on the static inputs, so it must not depend on being
called once (a sampler step that updates its input in place is fine: the buffers are refilled per call).
Random numbers drawn inside ``fn`` (``torch.randn``) are fresh on every replay (PyTorch's graph-safe
generator); pass noise in as an input when it must follow a per-item seed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch

from synthdata.kernels._select import log_once

__all__ = ["GraphRunner", "GraphShapeError", "capture", "maybe_compile", "pad_batch", "unpad_batch"]


class GraphShapeError(ValueError):
    """A call does not match the shapes/dtypes/devices a graph was captured with."""


def _signature(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return ("tensor", tuple(x.shape), x.dtype, x.device)
    return ("value", x)


def _map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple | list):
        return type(obj)(_map_tensors(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(fn, v) for k, v in obj.items()}
    return obj


class GraphRunner:
    """Capture ``fn(*static_inputs)`` in a CUDA graph and replay it; eager with the same contract elsewhere.

    ``static_inputs`` become the graph's input buffers (they are written on every call; non-tensor
    arguments are baked in and must be passed unchanged). ``enabled=False`` forces eager execution.
    ``pool`` shares a memory pool between graphs (``torch.cuda.graph_pool_handle()``).
    ``clone_outputs=True`` returns copies instead of the static output buffers.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        static_inputs: Sequence[Any],
        *,
        warmup: int = 2,
        enabled: bool = True,
        pool: Any = None,
        clone_outputs: bool = False,
        name: str | None = None,
    ):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.static_inputs = tuple(static_inputs)
        self.clone_outputs = clone_outputs
        self._signature = tuple(_signature(x) for x in self.static_inputs)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_outputs: Any = None
        self.eager_reason = self._eager_reason(enabled)
        if self.eager_reason is not None:
            log_once(f"graphs: {self.name} runs eagerly ({self.eager_reason})")
            return
        self._capture(warmup, pool)
        log_once(f"graphs: {self.name} captured in a CUDA graph")

    @property
    def mode(self) -> str:
        """``"graph"`` or ``"eager"``."""
        return "eager" if self.graph is None else "graph"

    def _eager_reason(self, enabled: bool) -> str | None:
        if not enabled:
            return "disabled by the caller"
        if not torch.cuda.is_available():
            return "CUDA is not available"
        tensors = [x for x in self.static_inputs if isinstance(x, torch.Tensor)]
        if not tensors:
            return "no tensor inputs"
        if not all(t.is_cuda for t in tensors):
            return "inputs are not all CUDA tensors"
        if torch.cuda.is_current_stream_capturing():
            raise RuntimeError(f"graphs: cannot capture {self.name} inside another capture")
        return None

    def _capture(self, warmup: int, pool: Any) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(max(1, warmup)):
                self.fn(*self.static_inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            self.static_outputs = self.fn(*self.static_inputs)
        self.graph = graph

    def check(self, *inputs: Any) -> None:
        """Raise :class:`GraphShapeError` unless ``inputs`` match the captured signature."""
        if len(inputs) != len(self._signature):
            raise GraphShapeError(f"graphs: {self.name} takes {len(self._signature)} inputs, got {len(inputs)}")
        for i, (x, want) in enumerate(zip(inputs, self._signature, strict=True)):
            got = _signature(x)
            if got != want:
                raise GraphShapeError(
                    f"graphs: {self.name} input {i} is {got[1:]} but was captured as {want[1:]}; shapes are "
                    "fixed per runner (pad the last batch with pad_batch, or build another runner)"
                )

    def replay(self) -> Any:
        """Run once on whatever the static input buffers hold now."""
        if self.graph is None:
            return self.fn(*self.static_inputs)
        self.graph.replay()
        return _map_tensors(torch.clone, self.static_outputs) if self.clone_outputs else self.static_outputs

    def __call__(self, *inputs: Any) -> Any:
        self.check(*inputs)
        if self.graph is None:
            return self.fn(*inputs)
        for buf, x in zip(self.static_inputs, inputs, strict=True):
            if isinstance(x, torch.Tensor) and x is not buf:
                buf.copy_(x)
        return self.replay()


def capture(fn: Callable[..., Any], static_inputs: Sequence[Any], **kwargs: Any) -> GraphRunner:
    """``GraphRunner(fn, static_inputs, **kwargs)``."""
    return GraphRunner(fn, static_inputs, **kwargs)


def pad_batch(x: torch.Tensor, size: int, *, mode: str = "zeros") -> torch.Tensor:
    """Pad dim 0 of ``x`` up to ``size`` rows with zeros (``mode="zeros"``) or copies of the last row (``"edge"``)."""
    n = x.shape[0]
    if n > size:
        raise ValueError(f"pad_batch: {n} rows do not fit in a batch of {size}")
    if n == size:
        return x
    if mode == "zeros":
        pad = x.new_zeros((size - n, *x.shape[1:]))
    elif mode == "edge":
        if n == 0:
            raise ValueError("pad_batch: cannot edge-pad an empty batch")
        pad = x[-1:].expand(size - n, *x.shape[1:])
    else:
        raise ValueError(f"pad_batch: mode must be 'zeros' or 'edge', got {mode!r}")
    return torch.cat([x, pad], dim=0)


def unpad_batch(x: Any, n: int) -> Any:
    """The first ``n`` rows of ``x`` (or of every tensor in a tuple/list/dict)."""
    return _map_tensors(lambda t: t[:n], x)


def _settle_backend_state() -> None:
    """Import triton and look for xformers now, so the traced code only reads the cached answers
    (an import inside a torch.compile trace would split the graph)."""
    from synthdata.kernels import _triton
    from synthdata.kernels.attention import _xformers_ops

    _triton.triton_problem()
    _xformers_ops()


_COMPILE_OFF = (None, "", "none", "off", "eager", "false", "0")


def maybe_compile(obj: Any, mode: str | None, *, backend: str = "inductor", fullgraph: bool = False, dynamic: bool = False) -> Any:
    """``torch.compile(obj, mode=...)`` when ``mode`` names a compile mode, else ``obj`` unchanged.

    ``mode``: ``None``/``"off"`` (no compilation), ``"default"``, ``"reduce-overhead"``,
    ``"max-autotune"``, ``"max-autotune-no-cudagraphs"``. The choice is logged once; compilation errors
    surface at the first call (never suppressed). ``dynamic=False`` keeps shapes fixed, as the graphs do.
    """
    if isinstance(mode, str):
        mode = mode.strip().lower()
    if mode in _COMPILE_OFF:
        log_once(f"compile: {getattr(obj, '__name__', type(obj).__name__)} runs without torch.compile")
        return obj
    valid = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
    if mode not in valid:
        raise ValueError(f"maybe_compile: mode must be None/'off' or one of {valid}, got {mode!r}")
    _settle_backend_state()
    log_once(
        f"compile: torch.compile({getattr(obj, '__name__', type(obj).__name__)}, mode={mode!r}, backend={backend!r})",
        logging.INFO,
    )
    return torch.compile(obj, mode=None if mode == "default" else mode, backend=backend, fullgraph=fullgraph, dynamic=dynamic)
