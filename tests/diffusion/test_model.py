"""GLIDE networks: official keys/shapes/dtypes on the meta device, strict loading, forward parity, text
embedding handling and the variants."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from synthdata.diffusion.model import (
    InpaintText2ImUNet,
    SuperResInpaintText2ImUNet,
    SuperResText2ImUNet,
    Text2ImUNet,
    create_model,
)
from synthdata.diffusion.options import base_options, options_from, smoke_options, upsample_options

from .conftest import REF, case, rel


@pytest.mark.parametrize("kind", ["base", "upsample"])
def test_manifest_keys_shapes_and_fp16_dtypes(kind):
    manifest = json.loads((REF / f"manifest_{kind}.json").read_text())
    model = create_model(manifest["options"], device="meta")
    state = model.state_dict()
    want = manifest["state_dict"]
    assert set(state) == set(want)
    for key, info in want.items():
        assert list(state[key].shape) == info["shape"], key
    assert sum(p.numel() for p in model.parameters()) == manifest["num_parameters"]
    model.convert_to_dtype(torch.float16)
    for key, value in model.state_dict().items():
        assert str(value.dtype).removeprefix("torch.") == want[key]["dtype_after_fp16"], key


@pytest.mark.parametrize("kind", ["base", "upsample"])
def test_builders_equal_the_official_configs(kind):
    manifest = json.loads((REF / f"manifest_{kind}.json").read_text())
    built = base_options() if kind == "base" else upsample_options()
    assert built == options_from(manifest)


def test_smoke_options_equal_the_tiny_reference_models(cases):
    assert smoke_options("base") == options_from(cases["tiny_base"]["options"])
    assert smoke_options("upsample") == options_from(cases["tiny_upsample"]["options"])


def test_strict_loading_of_an_official_state_dict_on_meta():
    # a state dict with exactly the manifest's keys and shapes loads strictly; one key short does not
    manifest = json.loads((REF / "manifest_upsample.json").read_text())
    model = create_model(manifest["options"], device="meta")
    state = {k: torch.empty(v["shape"], device="meta") for k, v in manifest["state_dict"].items()}
    model.load_state_dict(state, strict=True, assign=True)
    state.pop(next(iter(state)))
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(state, strict=True, assign=True)


def test_unknown_option_is_rejected():
    with pytest.raises(ValueError, match="unknown GLIDE option"):
        options_from({"num_chanels": 3})


def test_create_model_picks_the_variant():
    o = smoke_options("base")
    meta = {"device": "meta"}
    assert type(create_model(o, **meta)) is Text2ImUNet
    assert type(create_model(o.replace(inpaint=True), **meta)) is InpaintText2ImUNet
    assert type(create_model(smoke_options("upsample"), **meta)) is SuperResText2ImUNet
    assert type(create_model(smoke_options("upsample", inpaint=True), **meta)) is SuperResInpaintText2ImUNet


def test_base_forward_parity(tensors, tiny_base):
    t = case(tensors, "base_forward")
    with torch.no_grad():
        out = tiny_base(t["x"], t["t"], t["tokens"], t["mask"])
    assert out.shape == t["out"].shape
    assert rel(out, t["out"]) < 1e-4


def test_upsample_forward_parity(tensors, tiny_upsample):
    t = case(tensors, "up_forward")
    up = case(tensors, "up_ddim")
    b = t["x"].shape[0]
    with torch.no_grad():
        emb = tiny_upsample.encode_text(up["tokens"][:b], up["mask"][:b])
        out = tiny_upsample(t["x"], t["t"], text_emb=emb, low_res=t["low_res"])
    assert rel(out, t["out"]) < 1e-4


def test_precomputed_text_embedding_equals_tokens(tensors, tiny_base):
    t = case(tensors, "base_forward")
    x, ts = t["x"][:2], t["t"][:2]
    with torch.no_grad():
        a = tiny_base(x, ts, t["tokens"][:2], t["mask"][:2])
        b = tiny_base(x, ts, text_emb=tiny_base.encode_text(t["tokens"][:2], t["mask"][:2]))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_empty_prompt_embedding_is_cached_and_equals_reference_uncond_rows(tensors, tiny_base):
    t = case(tensors, "base_cfg")
    b = t["initial_noise"].shape[0]
    with torch.no_grad():
        want = tiny_base.encode_text(t["tokens"][b:], t["mask"][b:])
    empty = tiny_base.empty_text_embedding()
    assert tiny_base.empty_text_embedding() is empty  # once per model
    torch.testing.assert_close(empty.expand(b).xf_proj, want.xf_proj)
    torch.testing.assert_close(empty.expand(b).xf_out, want.xf_out)


def test_empty_embedding_cache_is_dropped_when_weights_change():
    model = create_model(smoke_options("base", xf_layers=1), seed=0)
    first = model.empty_text_embedding()
    other = create_model(smoke_options("base", xf_layers=1), seed=1)
    model.load_state_dict(other.state_dict())
    second = model.empty_text_embedding()
    assert second is not first
    assert not torch.equal(first.xf_proj, second.xf_proj)


def test_seeded_creation_is_reproducible_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a = create_model(smoke_options("base", xf_layers=1), seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = create_model(smoke_options("base", xf_layers=1), seed=3)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def test_inpaint_variants_take_their_inputs():
    torch.manual_seed(0)
    tokens = torch.full((1, 128), 50256)
    mask = torch.zeros(1, 128, dtype=torch.bool)
    small = {"channel_mult": "1,2", "image_size": 16, "xf_layers": 1, "attention_resolutions": "8"}
    base = create_model(smoke_options("base", inpaint=True, **small), seed=0)
    x = torch.randn(1, 3, 16, 16)
    out = base(x, torch.tensor([5]), tokens, mask, inpaint_image=x, inpaint_mask=torch.ones(1, 1, 16, 16))
    assert out.shape == (1, 6, 16, 16)
    up = create_model(smoke_options("upsample", inpaint=True, **small), seed=0)
    out = up(x, torch.tensor([5]), tokens, mask, low_res=torch.randn(1, 3, 8, 8))
    assert out.shape == (1, 6, 16, 16)
    with pytest.raises(ValueError, match="low_res"):
        up(x, torch.tensor([5]), tokens, mask)


def test_convert_to_dtype_keeps_norms_float32_and_runs(tensors, cases):
    model = create_model(cases["tiny_base"]["options"])
    model.load_state_dict(load_file(str(REF / "tiny_base.safetensors")))
    model.convert_to_dtype(torch.bfloat16)
    assert model.input_blocks[1][0].in_layers[2].weight.dtype == torch.bfloat16
    assert model.input_blocks[1][0].in_layers[0].weight.dtype == torch.float32
    assert model.out[2].weight.dtype == torch.float32
    t = case(tensors, "base_forward")
    with torch.no_grad():
        out = model(t["x"][:1], t["t"][:1], t["tokens"][:1], t["mask"][:1])
    assert out.dtype == torch.float32
    assert rel(out, t["out"][:1]) < 0.05  # bf16 blocks: close, not exact


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_cuda_is_close(tensors, cases, dtype):
    model = create_model(cases["tiny_base"]["options"])
    model.load_state_dict(load_file(str(REF / "tiny_base.safetensors")))
    model.to("cuda").convert_to_dtype(dtype)
    t = {k: v.cuda() for k, v in case(tensors, "base_forward").items()}
    with torch.no_grad():
        out = model(t["x"], t["t"], t["tokens"], t["mask"])
    assert out.dtype == torch.float32
    assert rel(out.cpu(), t["out"].cpu()) < 2e-2
