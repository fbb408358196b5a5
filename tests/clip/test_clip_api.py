"""synthdata.clip: loading, errors, zero-shot head and feature extraction (tiny models, random weights)."""

from __future__ import annotations

import open_clip
import pytest
import torch
from PIL import Image

from synthdata.clip import (
    DEFAULT_TEMPLATES,
    ClipBundle,
    WeightsUnavailableError,
    image_features,
    load_clip,
    logit_scale,
    register_tiny_models,
    text_features,
    zeroshot_weights,
)


@pytest.fixture(scope="module", params=["synthdata-tiny-rn", "synthdata-tiny-vit"])
def tiny(request) -> ClipBundle:
    torch.manual_seed(0)
    return load_clip(request.param, "none")


def test_register_tiny_models_is_idempotent():
    names = register_tiny_models()
    assert {"synthdata-tiny-rn", "synthdata-tiny-vit"} <= set(names)
    register_tiny_models()
    assert sum(m.startswith("synthdata-tiny") for m in open_clip.list_models()) == len(names)


def test_bundle_fields(tiny):
    assert not tiny.model.training
    assert tiny.pretrained == "none"
    assert tiny.device == torch.device("cpu") and tiny.dtype == torch.float32
    assert tiny.artifact == f"clip.{tiny.name}.none"
    image = tiny.preprocess(Image.new("RGB", (50, 70), (200, 10, 10)))
    assert image.shape == (3, tiny.image_size, tiny.image_size)


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError) as err:
        load_clip("RN5O", "none")
    message = str(err.value)
    assert "\n" not in message
    assert "RN50" in message and "close matches" in message


def test_unknown_model_without_close_match_still_helps():
    with pytest.raises(ValueError, match="unknown CLIP model"):
        load_clip("zzzzzzzzzzzz", "none")


def test_unknown_pretrained_tag_lists_tags():
    with pytest.raises(ValueError) as err:
        load_clip("RN50", "openaii")
    assert "openai" in str(err.value) and "yfcc15m" in str(err.value)


@pytest.fixture
def no_download(monkeypatch):
    """Fail the test if anything tries to download weights."""

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(open_clip, "download_pretrained", refuse)


def test_weights_not_cached_offline_is_one_clear_line(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as err:
        load_clip("RN50", "openai", cache_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert "RN50/openai" in message and str(tmp_path) in message
    # where the weights come from (open_clip 3.3 prefers the hub) and how to fix it
    assert "https://huggingface.co/timm/resnet50_clip.openai" in message
    assert "run once with network access" in message and "pretrained 'none'" in message


def test_unresolvable_host_counts_as_offline(tmp_path, monkeypatch, no_download):
    import socket

    def no_dns(*args, **kwargs):
        raise socket.gaierror("no network")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(WeightsUnavailableError, match=r"from https://huggingface\.co/timm/resnet50_clip\.openai"):
        load_clip("RN50", "openai", cache_dir=tmp_path)


def test_url_only_weights_name_the_url(tmp_path, monkeypatch, no_download):
    from synthdata.clip import _loading

    url = "https://example.invalid/weights/tiny.pt"
    monkeypatch.setattr(_loading, "get_pretrained_cfg", lambda name, tag: {"url": url})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as err:
        load_clip("synthdata-tiny-vit", "sometag", cache_dir=tmp_path)
    message = str(err.value)
    assert f"from {url} into {tmp_path}" in message and f"put the file from that URL into {tmp_path}" in message


def test_openai_url_file_in_cache_is_not_used_when_the_hub_is_the_source(tmp_path, monkeypatch, no_download):
    # OpenAI's URL files are TorchScript archives, which torch.load(weights_only=True) refuses.
    (tmp_path / "RN50.pt").write_bytes(b"not loadable")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError):
        load_clip("RN50", "openai", cache_dir=tmp_path)


def test_half_precision_needs_cuda():
    with pytest.raises(ValueError, match="CUDA"):
        load_clip("synthdata-tiny-vit", "none", device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="precision"):
        load_clip("synthdata-tiny-vit", "none", precision="fp8")


def test_weights_file_round_trip(tmp_path):
    torch.manual_seed(1)
    a = load_clip("synthdata-tiny-vit", None)
    path = tmp_path / "tiny.pt"
    torch.save(a.model.state_dict(), path)
    torch.manual_seed(2)
    b = load_clip("synthdata-tiny-vit", str(path))
    assert b.pretrained == str(path) and b.artifact == "clip.synthdata-tiny-vit.tiny.pt"
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(image_features(a, x), image_features(b, x))


def test_text_features_normalised_and_batched(tiny):
    texts = [f"a photo of thing {i}" for i in range(7)]
    full = text_features(tiny, texts)
    assert full.shape[0] == 7 and full.dtype == torch.float32 and not full.requires_grad
    torch.testing.assert_close(full.norm(dim=-1), torch.ones(7))
    torch.testing.assert_close(text_features(tiny, texts, batch_size=3), full, atol=1e-5, rtol=1e-5)


def test_zeroshot_weights_recipe(tiny):
    classes = ["red stripes", "blue dots", "green checks"]
    templates = ["a photo of a {}.", "art of the {}."]
    w = zeroshot_weights(tiny, classes, templates, batch_size=4)
    assert w.shape == (3, text_features(tiny, ["x"]).shape[1])
    torch.testing.assert_close(w.norm(dim=-1), torch.ones(3))
    # The recipe: mean of normalised per-template embeddings, re-normalised.
    manual = text_features(tiny, [t.format("blue dots") for t in templates]).mean(0)
    torch.testing.assert_close(w[1], manual / manual.norm(), atol=1e-5, rtol=1e-5)


def test_zeroshot_uses_the_templates(tiny):
    classes = ["cat", "dog"]
    a = zeroshot_weights(tiny, classes, ["a photo of a {}."])
    b = zeroshot_weights(tiny, classes, ["a drawing of a {}.", "a {} in a video game."])
    assert not torch.allclose(a, b)
    assert len(DEFAULT_TEMPLATES) >= 4 and all("{}" in t for t in DEFAULT_TEMPLATES)
    torch.testing.assert_close(zeroshot_weights(tiny, classes, DEFAULT_TEMPLATES).norm(dim=-1), torch.ones(2))


def test_zeroshot_rejects_bad_input(tiny):
    with pytest.raises(ValueError, match="template"):
        zeroshot_weights(tiny, ["cat"], ["no placeholder"])
    with pytest.raises(ValueError):
        zeroshot_weights(tiny, [], ["a {}"])


def test_image_features_and_logit_scale(tiny):
    x = torch.randn(3, 3, tiny.image_size, tiny.image_size, dtype=torch.float64)
    f = image_features(tiny, x)
    assert f.shape[0] == 3 and f.dtype == torch.float32 and not f.requires_grad
    torch.testing.assert_close(f.norm(dim=-1), torch.ones(3))
    assert logit_scale(tiny) == pytest.approx(1 / 0.07, rel=1e-5)


def test_rn50_random_matches_paper_architecture():
    bundle = load_clip("RN50", "none")
    assert bundle.image_size == 224
    w = zeroshot_weights(bundle, ["cat", "dog"], ["a photo of a {}."])
    assert w.shape == (2, 1024)
    tokens = bundle.tokenizer(["a photo of a cat.", "a dog"])
    with torch.no_grad():
        plain = torch.nn.functional.normalize(bundle.model.encode_text(tokens), dim=-1)
    torch.testing.assert_close(
        text_features(bundle, ["a photo of a cat.", "a dog"]), plain, atol=1e-5, rtol=1e-4
    )


def test_trimmed_text_encoding_matches_plain(tiny):
    from synthdata.clip._features import encode_text_trimmed, trim_eligible

    assert trim_eligible(tiny.model)
    texts = ["a photo of a red stripes.", "x", "a very " + "long " * 90 + "prompt"]  # the last is truncated
    tokens = tiny.tokenizer(texts)
    with torch.no_grad():
        torch.testing.assert_close(
            encode_text_trimmed(tiny.model, tokens), tiny.model.encode_text(tokens), atol=1e-5, rtol=1e-5
        )


def test_trimming_falls_back_for_ineligible_models():
    from synthdata.clip._features import encode_text_trimmed, trim_eligible

    class Plain:
        def encode_text(self, tokens):
            return tokens.float() * 2

    assert not trim_eligible(Plain())
    tokens = torch.ones(2, 5, dtype=torch.long)
    torch.testing.assert_close(encode_text_trimmed(Plain(), tokens), tokens.float() * 2)


def test_random_weights_are_seeded_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = load_clip("synthdata-tiny-rn", "none")
    assert torch.equal(torch.rand(3), before)  # the caller's RNG stream is untouched
    b = load_clip("synthdata-tiny-rn", "none")
    c = load_clip("synthdata-tiny-rn", "none", seed=1)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.model.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb)
    assert not torch.equal(pa, pc)
