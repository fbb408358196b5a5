"""GLIDE's byte-level BPE tokenizer (the GPT-2 vocabulary), written for synthdata.

The vocabulary files (``bpe/encoder.json.gz``, ``bpe/vocab.bpe.gz``, MIT licence in
``bpe/LICENSE-glide-text2im``) are package data. Text is lower-cased, split into words by the GPT-2
pre-tokenisation rule, mapped to bytes-as-unicode and merged by rank. ``padded_tokens_and_mask`` truncates to
the text context and pads with the end token, with ``mask`` True on real tokens.

The pre-tokeniser is a hand-written scanner equivalent to the GPT-2 pattern
``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`` (so no dependency on the
``regex`` package).
"""

from __future__ import annotations

import functools
import gzip
import json
import unicodedata
from collections.abc import Sequence
from importlib import resources

import torch

_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 reversible byte → printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def _is_letter(c: str) -> bool:
    return unicodedata.category(c)[0] == "L"


def _is_number(c: str) -> bool:
    return unicodedata.category(c)[0] == "N"


# Unicode White_Space, which is what ``\s`` means in the ``regex`` package (``str.isspace`` also counts the
# separators U+001C..U+001F, which ``\s`` does not).
_WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def _is_space(c: str) -> bool:
    return c in _WHITE_SPACE


def _run(text: str, i: int, pred) -> int:
    n = len(text)
    while i < n and pred(text[i]):
        i += 1
    return i


def _is_other(c: str) -> bool:
    return not (_is_space(c) or _is_letter(c) or _is_number(c))


def pretokenize(text: str) -> list[str]:
    """Split ``text`` into the pieces the GPT-2 pattern would find (see the module docstring)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        # 's|'t|'re|'ve|'m|'ll|'d
        if c == "'":
            hit = next((s for s in _CONTRACTIONS if text.startswith(s, i)), None)
            if hit is not None:
                out.append(hit)
                i += len(hit)
                continue
        # ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' (the optional space is a literal space)
        j = i + 1 if (c == " " and i + 1 < n) else i
        matched = False
        for pred in (_is_letter, _is_number, _is_other):
            if pred(text[j]):
                end = _run(text, j, pred)
                out.append(text[i:end])
                i = end
                matched = True
                break
        if matched:
            continue
        # '\s+(?!\S)' then '\s+'
        end = _run(text, i, _is_space)
        if end < n and end - i > 1:
            end -= 1  # leave the last space to join the following word
        out.append(text[i:end])
        i = end
    return out


class Tokenizer:
    """GPT-2 byte-level BPE as used by GLIDE (``n_vocab`` 50257, ``end_token`` 50256)."""

    def __init__(self, encoder: dict[str, int], merges: Sequence[tuple[str, str]]):
        self.encoder = encoder
        self.decoder = {v: k for k, v in encoder.items()}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.bpe_ranks = {tuple(m): i for i, m in enumerate(merges)}
        self._cache: dict[str, tuple[str, ...]] = {}

    @property
    def n_vocab(self) -> int:
        return len(self.encoder)

    @property
    def end_token(self) -> int:
        return self.n_vocab - 1

    def _bpe(self, token: str) -> tuple[str, ...]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        word = tuple(token)
        while len(word) > 1:
            pairs = {(word[k], word[k + 1]) for k in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if best not in self.bpe_ranks:
                break
            first, second = best
            merged: list[str] = []
            k = 0
            while k < len(word):
                if k < len(word) - 1 and word[k] == first and word[k + 1] == second:
                    merged.append(first + second)
                    k += 2
                else:
                    merged.append(word[k])
                    k += 1
            word = tuple(merged)
        self._cache[token] = word
        return word

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (lower-cased first; no end token appended)."""
        ids: list[int] = []
        for piece in pretokenize(text.lower()):
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(mapped))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        text = "".join(self.decoder[int(i)] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace")

    def padded_tokens_and_mask(self, tokens: Sequence[int], text_ctx: int) -> tuple[list[int], list[bool]]:
        """Truncate to ``text_ctx`` and pad with ``end_token``; ``mask`` is True on the real tokens."""
        tokens = list(tokens)[:text_ctx]
        padding = text_ctx - len(tokens)
        return tokens + [self.end_token] * padding, [True] * len(tokens) + [False] * padding

    def batch(
        self, texts: Sequence[str], text_ctx: int = 128, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens int64 (B, text_ctx), mask bool (B, text_ctx))`` for a list of texts."""
        rows = [self.padded_tokens_and_mask(self.encode(t), text_ctx) for t in texts]
        tokens = torch.tensor([r[0] for r in rows], dtype=torch.long, device=device).reshape(-1, text_ctx)
        mask = torch.tensor([r[1] for r in rows], dtype=torch.bool, device=device).reshape(-1, text_ctx)
        return tokens, mask


@functools.cache
def get_tokenizer() -> Tokenizer:
    """The GLIDE tokenizer from the packaged vocabulary (loaded once per process)."""
    root = resources.files("synthdata.diffusion") / "bpe"
    with (root / "encoder.json.gz").open("rb") as fh:
        encoder = json.loads(gzip.decompress(fh.read()).decode("utf-8"))
    with (root / "vocab.bpe.gz").open("rb") as fh:
        bpe_data = gzip.decompress(fh.read()).decode("utf-8")
    merges = [tuple(line.split()) for line in bpe_data.split("\n")[1:-1]]
    return Tokenizer(encoder, merges)  # type: ignore[arg-type]
