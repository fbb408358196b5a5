"""Backend selection: argument > environment variable > auto; explicit requests never fall back."""

import logging

import pytest
import torch

from synthdata.kernels import (
    BackendUnavailableError,
    attention,
    available_backends,
    group_norm_silu,
    guided_ancestral_step,
    reset_log_once,
)
from synthdata.kernels._select import Op, resolve

OP = Op("demo", "SYNTHDATA_DEMO_BACKEND", ("fast", "slow"))


def test_argument_beats_environment(monkeypatch):
    monkeypatch.setenv("SYNTHDATA_DEMO_BACKEND", "slow")
    assert OP.requested("fast") == ("fast", "argument")
    assert OP.requested("auto") == ("slow", "$SYNTHDATA_DEMO_BACKEND")
    monkeypatch.setenv("SYNTHDATA_DEMO_BACKEND", " AUTO ")
    assert OP.requested("auto") == ("auto", "auto")


def test_unknown_names_are_errors(monkeypatch):
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        OP.requested("cuda")
    monkeypatch.setenv("SYNTHDATA_DEMO_BACKEND", "nope")
    with pytest.raises(ValueError, match="SYNTHDATA_DEMO_BACKEND='nope'"):
        OP.requested("auto")
    with pytest.raises(TypeError):
        OP.requested(None)  # type: ignore[arg-type]


def test_auto_skips_ineligible_and_logs_once(caplog):
    reset_log_once()
    checks = {"fast": lambda: "no device", "slow": lambda: None}
    with caplog.at_level(logging.INFO, logger="synthdata.kernels"):
        assert resolve(OP, "auto", checks) == "slow"
        assert resolve(OP, "auto", checks) == "slow"
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["demo: auto chose backend 'slow' (skipped fast: no device)"]


def test_explicit_ineligible_raises_and_none_eligible_raises():
    with pytest.raises(BackendUnavailableError, match=r"'fast' \(requested by argument\).*no device"):
        resolve(OP, "fast", {"fast": lambda: "no device", "slow": lambda: None})
    with pytest.raises(BackendUnavailableError, match="no backend"):
        resolve(OP, "auto", {"fast": lambda: "a", "slow": lambda: "b"})


def test_env_var_routes_real_ops(monkeypatch):
    q = torch.randn(1, 2, 5, 16)
    monkeypatch.setenv("SYNTHDATA_ATTN_BACKEND", "math")
    torch.testing.assert_close(attention(q, q, q), attention(q, q, q, backend="sdpa"), atol=1e-6, rtol=1e-5)
    monkeypatch.setenv("SYNTHDATA_NORM_BACKEND", "triton")
    x = torch.randn(1, 4, 3, 3)
    if torch.cuda.is_available():
        pytest.skip("the CPU-tensor refusal only holds without an interpreter on a CPU tensor")
    with pytest.raises(BackendUnavailableError, match="SYNTHDATA_NORM_BACKEND"):
        group_norm_silu(x, None, None, groups=2)


def test_triton_refuses_cpu_tensors_when_compiled(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    mo, x = torch.randn(2, 6, 4, 4), torch.randn(1, 3, 4, 4)
    coefs = torch.zeros(7)
    with pytest.raises(BackendUnavailableError, match=r"not a CUDA tensor|TRITON_INTERPRET"):
        guided_ancestral_step(mo, x, None, coefs, guidance_scale=3.0, backend="triton")
    # auto falls back to torch and says why (once) rather than failing
    out = guided_ancestral_step(mo, x, None, coefs, guidance_scale=3.0)
    assert out.shape == x.shape


def test_grad_inputs_are_refused_by_triton_but_run_in_torch():
    q = torch.randn(1, 1, 4, 16, dtype=torch.float16, requires_grad=True)
    with pytest.raises(BackendUnavailableError, match="requires grad"):
        attention(q, q, q, backend="triton")
    attention(q, q, q).sum().backward()
    assert q.grad is not None


def test_available_backends_report():
    report = available_backends()
    assert set(report) >= {"attention", "norm", "sampler", "graphs", "compile", "versions"}
    assert report["attention"]["order"] == ["triton", "xformers", "sdpa", "math"]
    assert report["attention"]["backends"]["sdpa"] == "ok"
    assert report["norm"]["env"].startswith("SYNTHDATA_NORM_BACKEND=")
    if not torch.cuda.is_available():
        assert report["graphs"].startswith("eager fallback")
