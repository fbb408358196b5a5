"""Noise schedules and respacing against the official values, and the diffusion coefficients."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthdata.diffusion.schedule import (
    GaussianDiffusion,
    create_diffusion,
    named_beta_schedule,
    space_timesteps,
)

from .conftest import REF

SCHEDULES = json.loads((REF / "schedules.json").read_text())


@pytest.mark.parametrize("key", sorted(SCHEDULES))
def test_reference_schedules(key):
    entry = SCHEDULES[key]
    respacing = key.split("/", 1)[1]
    d = GaussianDiffusion.from_schedule(entry["noise_schedule"], 1000, respacing)
    assert d.timestep_map == entry["timestep_map"]
    np.testing.assert_allclose(d.betas, entry["betas"], rtol=1e-12, atol=0)


def test_respacing_strings():
    assert space_timesteps(1000, "") == list(range(1000))
    assert len(space_timesteps(1000, "100")) == 100
    assert space_timesteps(1000, "ddim50") == list(range(0, 1000, 20))
    fast = space_timesteps(1000, "fast27")
    assert len(fast) == 27 and 997 in fast and 999 not in fast
    assert space_timesteps(1000, "10,10,3,2,2") == space_timesteps(1000, [10, 10, 3, 2, 2])
    assert space_timesteps(10, "2,3") == [0, 4, 5, 7, 9]


@pytest.mark.parametrize("bad", ["ddim7x", "abc", "2000", "ddim999"])
def test_bad_respacing_raises(bad):
    with pytest.raises(ValueError):
        space_timesteps(1000, bad)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown noise schedule"):
        named_beta_schedule("cosine2", 10)


def test_respacing_keeps_alphas_cumprod():
    full = GaussianDiffusion.from_schedule("squaredcos_cap_v2", 1000, "")
    spaced = GaussianDiffusion.from_schedule("squaredcos_cap_v2", 1000, "25")
    np.testing.assert_allclose(spaced.alphas_cumprod, full.alphas_cumprod[spaced.timestep_map], rtol=1e-9)


def test_q_sample_and_xstart_round_trip():
    d = create_diffusion({"noise_schedule": "linear"}, "27")
    x0 = torch.rand(2, 3, 4, 4) * 2 - 1
    eps = torch.randn_like(x0)
    for i in (0, 13, 26):
        xt = d.q_sample(x0, i, eps)
        torch.testing.assert_close(d.predict_xstart(xt, i, eps), x0, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(d.predict_eps(xt, i, x0), eps, rtol=1e-3, atol=1e-3)


def test_learned_range_variance_ends():
    d = create_diffusion({}, "100")
    v = torch.ones(1)
    assert torch.allclose(d.learned_log_variance(v, 50), torch.tensor(np.log(d.betas[50]), dtype=torch.float32))
    assert torch.allclose(
        d.learned_log_variance(-v, 50), torch.tensor(d.posterior_log_variance_clipped[50], dtype=torch.float32)
    )
