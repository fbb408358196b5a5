"""A tiny randomly initialised T5 and a word-level tokenizer built locally, for --smoke runs and tests.

Nothing is downloaded: the tokenizer's vocabulary is the special tokens, a fixed list of common English
words and the words of the class names, in sorted order, so the same class list always gives the same
tokenizer and (with the fixed init seed) the same model. Its sentences are random words and say nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch

SMOKE_MODEL_ID = "smoke:tiny-random-t5"
SPECIALS = ("<pad>", "</s>", "<unk>")

_COMMON_WORDS = ["a", "an", "the", "of", "in", "on", "at", "by", "with", "from", "into", "over", "under", "near", "behind", "above", "below", "beside", "between", "through", "across", "and", "or", "but", "while", "is", "are", "was", "be", "being", "has", "have", "sits", "stands", "runs", "flies", "swims", "walks", "lies", "grows", "rests", "waits", "small", "large", "big", "little", "old", "new", "young", "bright", "dark", "red", "green", "blue", "white", "black", "brown", "yellow", "grey", "golden", "tall", "short", "long", "round", "wooden", "stone", "metal", "glass", "soft", "calm", "busy", "quiet", "wild", "open", "empty", "full", "sunny", "cloudy", "park", "street", "field", "water", "sky", "road", "river", "sea", "lake", "forest", "garden", "house", "room", "table", "window", "door", "tree", "grass", "beach", "mountain", "hill", "city", "town", "village", "farm", "snow", "rain", "sun", "light", "shadow", "morning", "evening", "night", "day", "man", "woman", "child", "people", "group", "photo", "picture", "view", "scene", "close", "side", "top", "front", "back", "middle", "corner", "edge", "two", "three", "many", "several", "some", "one", "another", "each", "every", "other", "this", "that", "its", "their", "his", "her"]


def _words(texts: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for t in texts:
        out.update(re.findall(r"[a-z0-9]+", t.lower()))
    return out


def build_smoke_tokenizer(classnames: Iterable[str]):
    """A ``PreTrainedTokenizerFast`` over a word-level vocabulary built from ``classnames`` and common words."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for w in sorted(_words(classnames) | set(_COMMON_WORDS)):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=64,
    )


def build_smoke_model(vocab_size: int, *, init_seed: int = 0):
    """A 2-layer, d_model 32 ``T5ForConditionalGeneration`` with random weights from ``init_seed``."""
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(
        vocab_size=vocab_size,
        d_model=32,
        d_ff=64,
        d_kv=8,
        num_heads=4,
        num_layers=2,
        num_decoder_layers=2,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = T5ForConditionalGeneration(cfg)
    return model.eval()


def build_smoke(classnames: Iterable[str], *, init_seed: int = 0):
    """(model, tokenizer) for a smoke run over ``classnames``."""
    tokenizer = build_smoke_tokenizer(list(classnames))
    model = build_smoke_model(len(tokenizer), init_seed=init_seed)
    return model, tokenizer
