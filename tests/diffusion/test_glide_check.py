"""synth-glide-check: the official reference directory, and another directory of the same format with other
configs, names and seeds (built here with synthdata's own implementation), so nothing depends on the files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from synthdata.diffusion.model import create_model
from synthdata.diffusion.options import smoke_options
from synthdata.diffusion.reference import check_reference
from synthdata.diffusion.sampling import TensorNoise, model_fn_for, real_guidance_sample, sample_loop
from synthdata.diffusion.schedule import create_diffusion
from synthdata.diffusion.tokenizer import get_tokenizer
from synthdata.tools.glide_check import main

from .conftest import REF

FAST_CASES = ["tokenizer", "schedules", "manifest_base", "manifest_upsample", "base_forward", "up_forward"]


def test_official_fast_cases_pass(capsys):
    args = [str(REF)]
    for c in FAST_CASES:
        args += ["--case", c]
    assert main(args) == 0
    out = capsys.readouterr().out
    for c in FAST_CASES[2:]:
        assert c in out
    assert "all within limits" in out


def test_unusable_directory_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2


def test_a_wrong_forward_fails(tmp_path, capsys):
    for name in ("cases.json", "tiny_base.safetensors"):
        shutil.copy(REF / name, tmp_path / name)
    t = {k: v for k, v in load_file(str(REF / "cases.safetensors")).items() if k.startswith("base_forward.")}
    t["base_forward.out"] = t["base_forward.out"] * (1 + 2e-4)
    save_file(t, str(tmp_path / "cases.safetensors"))
    assert main([str(tmp_path), "--case", "base_forward"]) == 1
    assert "FAIL" in capsys.readouterr().out


# ------------------------------------------------------------------------------ another directory
def _randomised(options, seed):
    model = create_model(options, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def _write_other_directory(root: Path) -> None:
    """Other model configs, names, batch sizes, seeds, respacings, guidance, eta > 0 with step noise."""
    g = torch.Generator().manual_seed(1234)

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    common = {"xf_layers": 1, "xf_width": 32, "xf_heads": 4, "attention_resolutions": "8", "num_res_blocks": 2}
    variant = {"num_heads": 2, "num_head_channels": -1, "use_scale_shift_norm": False, "resblock_updown": False}
    b_opts = smoke_options("base", image_size=16, channel_mult="1,2", timestep_respacing="4", **common, **variant)
    u_opts = smoke_options("upsample", image_size=32, channel_mult="1,1,1", timestep_respacing="ddim3", **common)
    base, up = _randomised(b_opts, 7), _randomised(u_opts, 8)
    tok = get_tokenizer()
    prompts = ["a drawing of a tree", "two dogs", "a red car"]
    tokens, mask = tok.batch([*prompts, "", "", ""], 128)
    t: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        t["fwd.x"], t["fwd.t"] = randn(3, 3, 16, 16), torch.tensor([3, 500, 999])
        t["fwd.tokens"], t["fwd.mask"] = tokens[:3], mask[:3]
        t["fwd.out"] = base(t["fwd.x"], t["fwd.t"], t["fwd.tokens"], t["fwd.mask"])

        guided = model_fn_for(base, base.encode_text(tokens, mask), guidance_scale=2.0)
        d = create_diffusion(b_opts)
        t["cfg.initial_noise"], t["cfg.step_noise"] = randn(3, 3, 16, 16), randn(4, 3, 3, 16, 16)
        t["cfg.tokens"], t["cfg.mask"] = tokens, mask
        noise = TensorNoise(t["cfg.initial_noise"], t["cfg.step_noise"])
        t["cfg.samples"] = sample_loop(d, guided, t["cfg.initial_noise"], noise=noise, clip_denoised=False)

        d5 = create_diffusion(b_opts, "5")
        t["rg.ref_image"], t["rg.q_noise"], t["rg.step_noise"] = randn(1, 3, 16, 16), randn(3, 3, 16, 16), randn(2, 3, 3, 16, 16)
        noise = TensorNoise(t["rg.q_noise"], t["rg.step_noise"])
        t["rg.samples"] = real_guidance_sample(d5, guided, t["rg.ref_image"], 2, noise=noise, batch=3, clip_denoised=False)

        up_tokens, up_mask = tokens[:2], mask[:2]
        low_res = randn(2, 3, 8, 8).clamp(-1, 1)
        t["upf.x"], t["upf.t"], t["upf.low_res"] = randn(2, 3, 32, 32), torch.tensor([10, 900]), low_res
        t["upf.out"] = up(t["upf.x"], t["upf.t"], up_tokens, up_mask, low_res=low_res)

        fn = model_fn_for(up, up.encode_text(up_tokens, up_mask), low_res=low_res)
        du = create_diffusion(u_opts)
        t["upd.noise"], t["upd.step_noise"] = randn(2, 3, 32, 32) * 0.9, randn(3, 2, 3, 32, 32)
        t["upd.low_res"], t["upd.tokens"], t["upd.mask"] = low_res, up_tokens, up_mask
        for key, clip in (("samples", True), ("samples_noclip", False)):
            noise = TensorNoise(None, t["upd.step_noise"])
            t[f"upd.{key}"] = sample_loop(du, fn, t["upd.noise"], noise=noise, method="ddim", eta=0.5, clip_denoised=clip)

    save_file({k: v.clone().contiguous() for k, v in t.items()}, str(root / "cases.safetensors"))
    save_file(base.state_dict(), str(root / "mini_base.safetensors"))
    save_file(up.state_dict(), str(root / "mini_up.safetensors"))
    cases = {
        "mini_base": {"options": b_opts.to_dict()},
        "mini_up": {"options": u_opts.to_dict()},
        "cfg": {"options": b_opts.to_dict(), "guidance_scale": 2.0, "clip_denoised": False},
        "rg": {"refer_img_iters": 2, "timestep_respacing": "5", "guidance_scale": 2.0, "clip_denoised": False},
        "upd": {"options": u_opts.to_dict(), "eta": 0.5},
    }
    (root / "cases.json").write_text(json.dumps(cases))
    texts = ["Hello, World!", "x" * 3]
    tok_cases = [{"text": s, "ids": tok.encode(s), "padded_16": tok.padded_tokens_and_mask(tok.encode(s), 16)[0]} for s in texts]
    (root / "tokenizer_cases.json").write_text(json.dumps({"n_vocab": 50257, "end_token": 50256, "cases": tok_cases}))


def test_another_directory_of_the_same_format(tmp_path, capsys):
    _write_other_directory(tmp_path)
    results = check_reference(tmp_path)
    by_case = {(r.case, r.quantity): r for r in results}
    for want in [("fwd", "out"), ("cfg", "samples"), ("rg", "samples"), ("upf", "out"), ("upd", "samples"), ("upd", "samples_noclip")]:
        assert by_case[want].ok, (want, by_case[want])
    assert by_case[("tokenizer[0]", "padded_16")].ok
    assert all(r.ok for r in results), [r for r in results if not r.ok]

    # one sampling loop off by more than 1e-3 fails and is named
    t = load_file(str(tmp_path / "cases.safetensors"))
    t["rg.samples"] = t["rg.samples"] * 1.01
    save_file(t, str(tmp_path / "cases.safetensors"))
    assert main([str(tmp_path), "--case", "rg", "--case", "fwd"]) == 1
    out = capsys.readouterr().out
    assert "rg" in out and "FAIL" in out
