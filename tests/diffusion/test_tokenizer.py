"""The BPE tokenizer against the official token ids, its packaged vocabulary, and the GPT-2 pre-tokeniser."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthdata.diffusion.tokenizer import get_tokenizer, pretokenize

from .conftest import REF

CASES = json.loads((REF / "tokenizer_cases.json").read_text())


def test_vocabulary_is_package_data_with_licence():
    root = resources.files("synthdata.diffusion") / "bpe"
    for name in ("encoder.json.gz", "vocab.bpe.gz", "LICENSE-glide-text2im"):
        assert (root / name).is_file(), name
    assert "MIT" in (root / "LICENSE-glide-text2im").read_text() or "Permission" in (
        root / "LICENSE-glide-text2im"
    ).read_text()


def test_vocab_size_and_end_token():
    tok = get_tokenizer()
    assert tok.n_vocab == CASES["n_vocab"] == 50257
    assert tok.end_token == CASES["end_token"]


@pytest.mark.parametrize("c", CASES["cases"], ids=lambda c: repr(c["text"][:20]))
def test_reference_ids_and_padding(c):
    tok = get_tokenizer()
    ids = tok.encode(c["text"])
    assert ids == c["ids"]
    padded, mask = tok.padded_tokens_and_mask(ids, 128)
    assert padded == c["padded_128"]
    assert mask == c["mask_128"]


def test_batch_shapes_and_truncation():
    tok = get_tokenizer()
    tokens, mask = tok.batch(["a photo of a cat", "", "word " * 300], text_ctx=128)
    assert tokens.shape == mask.shape == (3, 128)
    assert mask[1].sum() == 0 and (tokens[1] == tok.end_token).all()
    assert mask[2].all()  # overlong: truncated, no padding
    assert tok.decode(tokens[0, : int(mask[0].sum())].tolist()) == "a photo of a cat"


def test_decode_round_trip_lowercases():
    tok = get_tokenizer()
    text = "Zoë's café, 東京 1234!"
    assert tok.decode(tok.encode(text)) == text.lower()


_GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("ab Z9'’ \t\n\r\u00a0\u3000,.!é東😀'sltdmrve")) | st.characters(exclude_categories=["Cn", "Cs"]),
        max_size=40,
    )
)
def test_pretokenize_equals_gpt2_pattern(text):
    # unassigned code points (Cn) are left out: their class depends on the Unicode version of each library
    regex = pytest.importorskip("regex")
    assert pretokenize(text) == regex.findall(_GPT2, text)


@pytest.fixture(scope="module")
def transformers_gpt2(tmp_path_factory):
    """transformers' GPT-2 tokenizer over the same (packaged) vocabulary files, as an independent check."""
    import gzip

    transformers = pytest.importorskip("transformers")
    bpe = resources.files("synthdata.diffusion") / "bpe"
    root = tmp_path_factory.mktemp("gpt2")
    (root / "vocab.json").write_bytes(gzip.decompress((bpe / "encoder.json.gz").read_bytes()))
    (root / "merges.txt").write_bytes(gzip.decompress((bpe / "vocab.bpe.gz").read_bytes()))
    return transformers.GPT2Tokenizer(str(root / "vocab.json"), str(root / "merges.txt"))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcxyz AZ09'.,!-é東😀\n")), max_size=60))
def test_encode_equals_transformers_gpt2_tokenizer(transformers_gpt2, text):
    # GLIDE lower-cases before BPE; everything after that is GPT-2's byte-level BPE
    assert get_tokenizer().encode(text) == transformers_gpt2.encode(text.lower())


def test_reference_prompts_equal_transformers_gpt2_tokenizer(transformers_gpt2):
    for case in CASES["cases"]:
        assert get_tokenizer().encode(case["text"]) == transformers_gpt2.encode(case["text"].lower())
