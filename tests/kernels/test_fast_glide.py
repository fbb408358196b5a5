"""synthdata.diffusion.fast on tiny GLIDE models (CPU): the accelerated layers and the fixed-shape sampler
reproduce the exact float32 path; the layer swap keeps checkpoints interchangeable."""

import copy

import pytest
import torch

from synthdata.diffusion import fast
from synthdata.diffusion.model import AttentionBlock, create_model
from synthdata.diffusion.options import smoke_options
from synthdata.diffusion.sampling import GeneratorNoise, model_fn_for, sample_loop
from synthdata.diffusion.schedule import create_diffusion


def _tiny(kind: str, size: int, seed: int = 0):
    mult = {16: "1,2", 32: "1,1,2"}[size]
    o = smoke_options(kind, image_size=size, channel_mult=mult, attention_resolutions="8,4", text_ctx=8)
    model = create_model(o, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # the zero-initialised output layers, so the outputs depend on every layer
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def _text(model, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 1000, (n, model.text_ctx), generator=g)
    mask = torch.arange(model.text_ctx)[None] < torch.randint(1, model.text_ctx, (n, 1), generator=g)
    return model.encode_text(tokens, mask)


@torch.no_grad()
def test_accelerated_forward_matches_and_state_dict_is_unchanged():
    model = _tiny("base", 16)
    ref = copy.deepcopy(model)
    x, t = torch.randn(3, 3, 16, 16), torch.tensor([5, 500, 999])
    text = _text(model, 3)
    want = ref(x, t, text_emb=text)
    fast.accelerate(model, attention="math", norm="torch")
    assert any(type(m) is fast.FastAttentionBlock for m in model.modules())
    assert model.state_dict().keys() == ref.state_dict().keys()
    torch.testing.assert_close(model(x, t, text_emb=text), want, atol=1e-5, rtol=1e-5)
    fast.accelerate(model, attention="sdpa", norm="torch", channels_last=True)  # token-major attention path
    xcl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(model(xcl, t, text_emb=text), want, atol=1e-5, rtol=1e-5)
    # the sampler's forward (precomputed conditioning vector) is the model's forward
    from synthdata.diffusion._layers import timestep_embedding

    emb = model.time_embed(timestep_embedding(t, model.model_channels)) + text.xf_proj
    torch.testing.assert_close(fast.unet_forward(model, x, emb, text.xf_out), want, atol=1e-5, rtol=1e-5)
    fast.restore(model)
    assert not any(type(m) is fast.FastAttentionBlock for m in model.modules())
    assert any(type(m) is AttentionBlock for m in model.modules())
    ref.load_state_dict(model.state_dict())


@torch.no_grad()
@pytest.mark.parametrize("n", [3, 2])  # 2 rows in a sampler of 3: the padded last batch
def test_guided_ancestral_matches_exact_loop(n):
    model = _tiny("base", 16)
    diffusion = create_diffusion(model.options, "6")
    cond = _text(model, n)
    text = cond.cat(model.empty_text_embedding().expand(n))
    seeds = list(range(10, 10 + n))
    noise = GeneratorNoise.from_seeds(seeds)
    x = noise.initial((n, 3, 16, 16), "cpu")
    want = sample_loop(diffusion, model_fn_for(model, text, guidance_scale=3.0), x, noise=noise)

    fast.accelerate(model, attention="math", norm="torch")
    sampler = fast.FastSampler(model, diffusion, batch_size=3, guidance_scale=3.0, options=fast.FastOptions(sampler="torch"))
    noise = GeneratorNoise.from_seeds(seeds)
    x = noise.initial((n, 3, 16, 16), "cpu")
    got = sampler(x, text, noise=noise)
    # rounding only: the padded batch lets the convolutions sum in another order (measured ~3e-5)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # a second batch reuses the same step (one per shape, never re-recorded)
    sampler(x, cond.cat(model.empty_text_embedding()), noise=GeneratorNoise.from_seeds(seeds))
    assert len(sampler._runners) == 1


@torch.no_grad()
def test_upsampler_ddim_matches_exact_loop():
    model = _tiny("upsample", 32)
    diffusion = create_diffusion(model.options, "ddim4")
    text = _text(model, 2)
    low_res = torch.rand(2, 3, 8, 8) * 2 - 1
    noise = GeneratorNoise.from_seeds([1, 2])
    x = noise.initial((2, 3, 32, 32), "cpu") * 0.997
    want = sample_loop(diffusion, model_fn_for(model, text, low_res=low_res), x, noise=noise, method="ddim")
    fast.accelerate(model, attention="sdpa", norm="torch")
    sampler = fast.FastSampler(model, diffusion, batch_size=2, method="ddim")
    got = sampler(x, text, low_res=low_res)
    # sdpa sums in another order than the exact path; DDIM's eps re-derivation amplifies that near t = 0
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_fast_sampler_in_the_pipeline_matches_the_exact_sampler():
    """Chunks of 2 (the last one padded), Real Guidance rows beside plain rows, then the upsampler."""
    from synthdata.diffusion.pipeline import GlidePipeline

    up = create_model(smoke_options("upsample", image_size=64, channel_mult="1,1,1,1", attention_resolutions="8",
                                    text_ctx=8), seed=5)  # fmt: skip
    base = _tiny("base", 16)
    pipe = GlidePipeline(copy.deepcopy(base), copy.deepcopy(up))
    prompts, seeds = ["a dog", "a cat", "a red car"], [7, 8, 9]
    ref_image = torch.rand(3, 20, 20) * 2 - 1
    rg = [None, ref_image, None]
    want = pipe.generate_base(prompts, seeds, respacing="4", real_guidance=rg, start_step=2)
    want_up = pipe.upsample(want, prompts, seeds, respacing="ddim2")
    sampler = fast.FastSampling(2, attention="math", norm="torch", options=fast.FastOptions(sampler="torch"))
    fp = GlidePipeline(base, up, sampler=sampler)
    got = fp.generate_base(prompts, seeds, respacing="4", real_guidance=rg, start_step=2)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fp.upsample(got, prompts, seeds, respacing="ddim2"), want_up, atol=1e-4, rtol=1e-4)
    assert fp.describe()["fast"]["batch_size"] == 2 and fp.describe()["sampler"] == "fast"
    assert fp.model_digests() == pipe.model_digests()  # taken before the layers were swapped
    # fixed shapes: one sampler per model, each with one step (plain, Real Guidance and padded rows alike)
    assert sorted(k[0] for k in sampler._samplers) == ["base", "upsample"]
    assert all(len(s._runners) == 1 for s in sampler._samplers.values())
    # the exact pipeline's models were not touched by building the fast one
    assert not any(isinstance(m, fast.FastAttentionBlock | fast.FastGroupNorm32) for m in pipe.base.modules())
    assert any(isinstance(m, fast.FastAttentionBlock) for m in fp.base.modules())
    # one FastSampling serves one pipeline: its samplers hold that pipeline's models
    with pytest.raises(ValueError, match="another pipeline's base model"):
        GlidePipeline(copy.deepcopy(pipe.base), sampler=sampler)


class _EmulatedGraph:
    """Stands in for ``torch.cuda.CUDAGraph`` on the CPU: ``replay`` recomputes the captured function and
    writes into the outputs of the capture, so callers see a graph's semantics (one persistent output
    buffer, overwritten per replay, inputs read from the static buffers)."""

    def __init__(self, runner):
        self.runner = runner
        self.replays = 0

    def replay(self):
        self.replays += 1
        fresh = self.runner.fn(*self.runner.static_inputs)
        self.runner.static_outputs.copy_(fresh)


class _EmulatedGraphRunner(fast.GraphRunner):
    def _eager_reason(self, enabled):
        return None if enabled else "disabled by the caller"

    def _capture(self, warmup, pool):
        for _ in range(max(1, warmup)):
            self.fn(*self.static_inputs)
        self.static_outputs = self.fn(*self.static_inputs)
        self.graph = _EmulatedGraph(self)


@torch.no_grad()
def test_sampler_under_graph_replay_semantics(monkeypatch):
    """The sampler's graph path (static buffers refilled per step, step index and noise in device buffers,
    one persistent output) gives the eager result; one capture serves every step and every batch."""
    monkeypatch.setattr(fast, "GraphRunner", _EmulatedGraphRunner)
    model = _tiny("base", 16)
    diffusion = create_diffusion(model.options, "5")
    fast.accelerate(model, attention="math", norm="torch")
    text = _text(model, 2).cat(model.empty_text_embedding())
    results = {}
    for graphs in (False, True):
        opts = fast.FastOptions(sampler="torch", cuda_graphs=graphs)
        sampler = fast.FastSampler(model, diffusion, batch_size=3, guidance_scale=3.0, options=opts)
        noise = GeneratorNoise.from_seeds([4, 5])
        results[graphs] = sampler(noise.initial((2, 3, 16, 16), "cpu"), text, noise=noise)
        (runner,) = sampler._runners.values()
        assert runner.mode == ("graph" if graphs else "eager")
    torch.testing.assert_close(results[True], results[False], atol=0, rtol=0)
    assert runner.graph.replays == diffusion.num_timesteps
    # Real Guidance style: another start step and a 1-row batch reuse the same capture
    noise = GeneratorNoise.from_seeds([4])
    sampler(noise.initial((1, 3, 16, 16), "cpu"), text.index(slice(0, 1)).cat(text.index(slice(2, 3))),
            noise=noise, start=2)  # fmt: skip
    assert len(sampler._runners) == 1 and runner.graph.replays == diffusion.num_timesteps + 3


@torch.no_grad()
@pytest.mark.parametrize("backends", [("sdpa", "torch"), ("auto", "auto")])
def test_fast_step_traces_as_one_graph(backends):
    """torch.compile sees the whole sampler step as one graph: no graph break in the kernel dispatch (locks,
    logging, imports), no host sync or data-dependent python in the step, so a CUDA graph can hold it too."""
    import torch._dynamo as dynamo

    model = _tiny("base", 16)
    fast.accelerate(model, attention=backends[0], norm=backends[1])
    sampler = fast.FastSampler(model, create_diffusion(model.options, "3"), batch_size=2, guidance_scale=3.0,
                               options=fast.FastOptions(compile="default"))  # fmt: skip
    text = sampler._padded_text(_text(model, 2).cat(model.empty_text_embedding()), 2, 2)
    x = torch.randn(2, 3, 16, 16)
    dynamo.reset()
    explained = dynamo.explain(sampler._step)(x, torch.zeros(1, dtype=torch.long), torch.randn_like(x),
                                              text.xf_proj, text.xf_out, {})  # fmt: skip
    assert explained.graph_break_count == 0, [str(b.reason)[:200] for b in explained.break_reasons]
    assert explained.graph_count == 1


def test_sampler_argument_errors():
    model = _tiny("base", 16)
    diffusion = create_diffusion(model.options, "3")
    sampler = fast.FastSampler(model, diffusion, batch_size=2, guidance_scale=3.0)
    with pytest.raises(ValueError, match="3 rows for a sampler of batch_size 2"):
        sampler(torch.zeros(3, 3, 16, 16), None)
    with pytest.raises(ValueError, match="cond"):
        sampler(torch.zeros(2, 3, 16, 16), _text(model, 1), noise=GeneratorNoise.from_seeds([1, 2]))
    with pytest.raises(ValueError, match="needs a noise source"):
        sampler(torch.zeros(1, 3, 16, 16), _text(model, 2))
    with pytest.raises(ValueError, match="method"):
        fast.FastSampler(model, diffusion, batch_size=2, method="euler")  # type: ignore[arg-type]


def _cuda_fp32_reference(respacing: str):
    """A tiny base model on CUDA (float32), its diffusion and the exact guided samples of seeds 3 and 4."""
    model = _tiny("base", 16).cuda()
    diffusion = create_diffusion(model.options, respacing)
    text = _text(model, 2).cat(model.empty_text_embedding().expand(2))
    noise = GeneratorNoise.from_seeds([3, 4])
    x = noise.initial((2, 3, 16, 16), "cuda")
    return model, diffusion, sample_loop(diffusion, model_fn_for(model, text, guidance_scale=3.0), x, noise=noise)


@pytest.mark.gpu
@torch.no_grad()
def test_cuda_half_graph_sampler_close_to_fp32():
    model, diffusion, want = _cuda_fp32_reference("6")
    fast.accelerate(model, dtype=torch.float16)
    text = _text(model, 2).cat(model.empty_text_embedding().expand(2))
    sampler = fast.FastSampler(model, diffusion, batch_size=4, guidance_scale=3.0)
    noise = GeneratorNoise.from_seeds([3, 4])
    got = sampler(noise.initial((2, 3, 16, 16), "cuda"), text, noise=noise)
    assert next(iter(sampler._runners.values())).mode == "graph"
    assert (got - want).abs().max() < 0.1


@pytest.mark.gpu
@torch.no_grad()
def test_cuda_compiled_step_close_to_fp32():
    model, diffusion, want = _cuda_fp32_reference("4")
    fast.accelerate(model, dtype=torch.float16, attention="sdpa", norm="torch")
    text = _text(model, 2).cat(model.empty_text_embedding().expand(2))
    options = fast.FastOptions(sampler="torch", compile="default")
    sampler = fast.FastSampler(model, diffusion, batch_size=2, guidance_scale=3.0, options=options)
    noise = GeneratorNoise.from_seeds([3, 4])
    got = sampler(noise.initial((2, 3, 16, 16), "cuda"), text, noise=noise)
    assert (got - want).abs().max() < 0.1
