"""The fast GLIDE sampler with the triton attention (token-major, channels_last path) and the triton
sampler update in triton's CPU interpreter, against the exact float32 loop on a tiny random model.
(The triton GroupNorm is checked on its own in ``interp_norm.py``: the interpreter runs its programs one
by one, seconds per call, too slow for every norm of a model.)

Run in a subprocess with ``TRITON_INTERPRET=1`` by ``tests/kernels/test_triton_interpreter.py``.
"""

import pytest
import torch

from synthdata.diffusion import fast
from synthdata.diffusion.model import create_model
from synthdata.diffusion.options import smoke_options
from synthdata.diffusion.sampling import GeneratorNoise, model_fn_for, sample_loop
from synthdata.diffusion.schedule import create_diffusion
from synthdata.kernels import _triton

if not _triton.interpreting() or _triton.triton_problem() is not None:
    pytest.skip("needs TRITON_INTERPRET=1 set before triton is imported", allow_module_level=True)


@torch.no_grad()
def test_guided_sampler_with_triton_kernels():
    torch.set_num_threads(1)
    o = smoke_options("base", image_size=16, channel_mult="1,2", attention_resolutions="8", text_ctx=8)
    model = create_model(o, seed=0)
    g = torch.Generator().manual_seed(1)
    for p in model.parameters():
        if not p.any():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    diffusion = create_diffusion(o, "2")
    tokens = torch.randint(0, 1000, (2, 8), generator=g)
    text = model.encode_text(tokens, torch.ones(2, 8, dtype=torch.bool)).cat(model.empty_text_embedding().expand(2))
    noise = GeneratorNoise.from_seeds([5, 6])
    x = noise.initial((2, 3, 16, 16), "cpu")
    want = sample_loop(diffusion, model_fn_for(model, text, guidance_scale=3.0), x, noise=noise)

    fast.accelerate(model, attention="triton", norm="torch", channels_last=True)
    options = fast.FastOptions(sampler="triton", channels_last=True)
    sampler = fast.FastSampler(model, diffusion, batch_size=3, guidance_scale=3.0, options=options)
    noise = GeneratorNoise.from_seeds([5, 6])
    x = noise.initial((2, 3, 16, 16), "cpu")  # the same draws as above, in the same order
    got = sampler(x, text, noise=noise)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
