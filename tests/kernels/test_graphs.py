"""GraphRunner's contract (eager on the CPU, CUDA graphs on a GPU), batch padding and the compile switch."""

import logging

import pytest
import torch

from synthdata.kernels import GraphRunner, GraphShapeError, capture, maybe_compile, pad_batch, reset_log_once


def _step(x, scale):
    x.mul_(scale)  # in place, like a sampler step writing its state buffer
    return x + 1, x.sum()


def test_eager_fallback_keeps_the_contract(caplog):
    reset_log_once()
    x, s = torch.ones(4, 3), torch.tensor(2.0)
    with caplog.at_level(logging.INFO, logger="synthdata.kernels"):
        runner = GraphRunner(_step, [x, s], name="step")
    assert runner.mode == "eager"
    assert "step runs eagerly" in caplog.text
    y, total = runner(torch.full((4, 3), 3.0), torch.tensor(0.5))
    torch.testing.assert_close(y, torch.full((4, 3), 2.5))
    assert float(total) == 18.0
    with pytest.raises(GraphShapeError, match=r"input 0 .*pad the last batch"):
        runner(torch.ones(3, 3), s)
    with pytest.raises(GraphShapeError, match="takes 2 inputs"):
        runner(x)
    with pytest.raises(GraphShapeError):
        runner(x.double(), s)


def test_disabled_and_capture_alias():
    runner = capture(lambda a: a * 2, [torch.ones(2)], enabled=False)
    assert runner.mode == "eager" and runner.eager_reason == "disabled by the caller"
    torch.testing.assert_close(runner(torch.full((2,), 4.0)), torch.full((2,), 8.0))
    torch.testing.assert_close(runner.replay(), torch.full((2,), 2.0))


def test_pad_and_unpad():
    x = torch.arange(6.0).reshape(3, 2)
    z = pad_batch(x, 5)
    assert z.shape == (5, 2) and z[3:].abs().sum() == 0
    e = pad_batch(x, 4, mode="edge")
    torch.testing.assert_close(e[3], x[2])
    assert pad_batch(x, 3) is x
    from synthdata.kernels import unpad_batch

    a, d = unpad_batch((z, {"k": e}), 3)
    torch.testing.assert_close(a, x)
    torch.testing.assert_close(d["k"], x)
    with pytest.raises(ValueError, match="do not fit"):
        pad_batch(x, 2)
    with pytest.raises(ValueError, match="mode"):
        pad_batch(x, 4, mode="wrap")


def test_maybe_compile_off_and_bad_mode():
    def f(a):
        return a + 1

    for off in (None, "off", "none", ""):
        assert maybe_compile(f, off) is f
    with pytest.raises(ValueError, match="mode must be"):
        maybe_compile(f, "fastest")


@pytest.mark.gpu
def test_cuda_graph_replays_a_sampler_step():
    x, s = torch.ones(8, 8, device="cuda"), torch.tensor(2.0, device="cuda")
    runner = GraphRunner(_step, [x.clone(), s.clone()], warmup=1)
    assert runner.mode == "graph"
    y, total = runner(torch.full((8, 8), 3.0, device="cuda"), torch.tensor(0.5, device="cuda"))
    torch.testing.assert_close(y, torch.full((8, 8), 2.5, device="cuda"))
    assert float(total) == 96.0
    y2, _ = runner(torch.full((8, 8), 1.0, device="cuda"), torch.tensor(3.0, device="cuda"))
    assert y2 is y  # static outputs, overwritten per replay
    torch.testing.assert_close(y2, torch.full((8, 8), 4.0, device="cuda"))
