"""Language Enhancement: class names to many diverse sentences with a keyword-to-text seq2seq model.

The paper (He et al., ICLR 2023, ``src/LE.py``) feeds each class name to ``mrm8488/t5-base-finetuned-common_gen``
through keytotext, one sampled sentence per call, then keeps a random subset of the unique ones (and
crashes when fewer than N are unique). Here:

* many classes and many samples per class share one ``generate`` call (``num_return_sequences`` rows
  of each class, packed up to ``batch_size`` sequences a call), on the CPU or a GPU;
* sentences are de-duplicated on normalised text (lower case, punctuation and extra spaces removed) and
  the first ``per_class`` unique ones in generation order are kept;
* a sentence that lost the class name is repaired (the class name put in front), dropped or kept as
  generated (the paper's code checks nothing) as ``on_missing_class`` says, and counted;
* a class still short after a round is sampled again (with twice as many samples, up to 16x), up to
  ``max_rounds``, or until a whole round adds nothing new (``saturated``); what is still missing then is
  reported per class, not raised;
* every ``generate`` call is seeded from (seed, round, call), so the same seed, batch size and device
  give the same sentences.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from synthdata.prompts.config import DEFAULT_LE_MODEL, PromptsConfig
from synthdata.prompts.errors import ModelNotAvailableError
from synthdata.shards.options import field_defaults

log = logging.getLogger(__name__)

DEFAULT_MODEL = DEFAULT_LE_MODEL
MISSING_CLASS_POLICIES = ("repair", "drop", "keep")
DEFAULT_BLOCK_CLASSES = 64  # classes per resume block (a journal line); part of the seed derivation
JOURNAL_VERSION = 1
MAX_ROUND_GROWTH = 16  # a round asks for at most 16x (oversampled) what is missing
_NAME_STOPWORDS = frozenset({"a", "an", "the", "of", "and", "in", "on", "with", "to", "for", "s"})


_D = field_defaults(PromptsConfig)  # the sampling defaults live once, in PromptsConfig


@dataclass(frozen=True, kw_only=True)
class LEConfig:
    """Sampling and bookkeeping settings. The defaults are the paper's sampling (HF ``do_sample`` with
    top-k 50, top-p 1, temperature 1) with the paper's 200 sentences per class."""

    per_class: int = _D["per_class"]
    top_k: int = _D["top_k"]
    top_p: float = _D["top_p"]
    temperature: float = _D["temperature"]
    max_new_tokens: int = _D["max_new_tokens"]
    num_return_sequences: int = _D["num_return_sequences"]
    batch_size: int = _D["batch_size"]
    oversample: float = 1.5
    max_rounds: int = _D["max_rounds"]
    on_missing_class: str = _D["on_missing_class"]
    seed: int = _D["seed"]

    def __post_init__(self) -> None:
        if self.per_class < 1:
            raise ValueError(f"per_class must be at least 1, got {self.per_class}")
        if self.on_missing_class not in MISSING_CLASS_POLICIES:
            raise ValueError(f"on_missing_class must be one of {MISSING_CLASS_POLICIES}")
        if self.batch_size < 1 or self.num_return_sequences < 1 or self.max_rounds < 1:
            raise ValueError("batch_size, num_return_sequences and max_rounds must be at least 1")
        if self.oversample < 1.0:
            raise ValueError("oversample must be at least 1.0")


@dataclass
class ClassStats:
    """What generation did for one class."""

    class_index: int
    class_name: str
    wanted: int
    generated: int = 0
    unique: int = 0
    duplicates: int = 0
    empty: int = 0
    missing_class: int = 0
    dropped: int = 0
    repaired: int = 0
    rounds: int = 0
    saturated: bool = False  # a round added no new sentence, so sampling stopped early

    @property
    def shortfall(self) -> int:
        return max(0, self.wanted - self.unique)


@dataclass
class LEResult:
    """Unique sentences per class (in class order) and the per-class counts."""

    sentences: list[list[str]]
    stats: list[ClassStats]
    config: LEConfig
    model_id: str = ""
    calls: int = 0
    shortfalls: dict[int, int] = field(default_factory=dict)


def normalize_text(text: str) -> str:
    """The de-duplication key: lower case, every run of non-alphanumerics one space, trimmed."""
    return " ".join(re.findall(r"[0-9a-z]+", text.lower()))


def _singulars(tok: str) -> set[str]:
    """``tok`` and the singulars it could be the plural of (dogs, buses, berries, leaves, knives)."""
    forms = {tok}
    if len(tok) >= 2 and tok.endswith("s"):
        forms.add(tok[:-1])
        if tok.endswith("es"):
            forms.add(tok[:-2])
        if tok.endswith("ies"):
            forms.add(tok[:-3] + "y")
        if tok.endswith("ves"):
            forms.update((tok[:-3] + "f", tok[:-3] + "fe"))
    return forms


def _token_match(name_tok: str, sent_tok: str) -> bool:
    """The same word up to a plural, either way round (dog/dogs, buildings/building), but not a longer
    word that merely starts with it (cat/catch, car/card)."""
    return name_tok == sent_tok or bool(_singulars(name_tok) & _singulars(sent_tok))


def contains_class(sentence: str, classname: str) -> bool:
    """Whether ``sentence`` still names the class: every content word of the name (or of one of its
    ``or`` alternatives, as in "highway or road") appears, allowing plural/inflected forms."""
    sent = re.findall(r"[0-9a-z]+", sentence.lower())
    alternatives = re.split(r"\bor\b", classname.lower())
    for alt in alternatives:
        toks = [t for t in re.findall(r"[0-9a-z]+", alt) if t not in _NAME_STOPWORDS]
        if not toks:
            continue
        if all(any(_token_match(t, s) for s in sent) for t in toks):
            return True
    return not any(
        t not in _NAME_STOPWORDS for alt in alternatives for t in re.findall(r"[0-9a-z]+", alt)
    )


def repair_sentence(sentence: str, classname: str) -> str:
    """Put the class name in front of a sentence that lost it: ``"<class name>, <sentence>"``."""
    s = " ".join(sentence.split())
    s = re.sub(r"^(The|A|An) ", lambda m: m.group(1).lower() + " ", s)
    return f"{classname}, {s}"


def keyword_input(classname: str) -> str:
    """The model input for a class: its name as space-separated concept words, as the common_gen model was
    trained on (keytotext, which the paper used, strips quotes/brackets and turns commas into spaces)."""
    text = classname.replace(",", " ").replace("[", " ").replace("]", " ").replace("'", "")
    return " ".join(text.split())


def _call_seed(seed: int, rnd: int, call: int) -> int:
    digest = hashlib.sha256(f"synthdata.prompts.le:{seed}:{rnd}:{call}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None picks CUDA when available, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _hub_offline() -> bool:
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        from huggingface_hub import constants

        return env or bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - huggingface_hub always comes with transformers
        return env


def hf_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:  # pragma: no cover
        return os.path.expanduser("~/.cache/huggingface/hub")


def _one_line(exc: BaseException) -> str:
    """An exception as one short line (library messages often span several)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}{'...' if len(text) > 300 else ''}"


def _looks_like_path(model: str) -> bool:
    """A hub id is ``name`` or ``owner/name``; anything else (absolute, ``./``, ``~``, deeper) is a path."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or (os.sep != "/" and os.sep in model)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens within ``timeout`` seconds.

    Checked before a download so that an offline machine fails in seconds with our message instead of
    after a minute of the hub client's retries. Behind a proxy the probe is skipped (assumed reachable).
    """
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    import socket
    from urllib.parse import urlparse

    url = urlparse(_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _fetch_hint(model: str, option: str) -> str:
    return (
        f"Fetch it where the internet is reachable (`hf download {model}`) and copy the Hugging Face cache "
        f"here, pass {option} /path/to/a/local/model/dir, or use --smoke"
    )


def load_model(model: str, device: str | torch.device | None = "auto", *, option: str = "--model"):
    """(model, tokenizer) for a seq2seq model id or local directory, in eval mode on ``device``.

    Order: a local directory; else the Hugging Face cache (no network); else a download into that cache
    (so the next run finds it there), unless the hub is offline (``HF_HUB_OFFLINE=1``) or unreachable.
    Raises :class:`ModelNotAvailableError` (one line, naming the model, the cache and the fix) when none
    of these works; ``option`` is the command-line option its fix names for a local directory.
    """
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    dev = resolve_device(device)
    local = Path(model).expanduser()
    if local.is_dir():
        try:
            tok = AutoTokenizer.from_pretrained(str(local))
            net = AutoModelForSeq2SeqLM.from_pretrained(str(local))
        except Exception as exc:
            raise ModelNotAvailableError(
                f"cannot load a seq2seq model and tokenizer from directory {local} ({_one_line(exc)}); it "
                "needs the files of `save_pretrained` (config.json, weights, tokenizer files)"
            ) from exc
        return net.to(dev).eval(), tok
    if _looks_like_path(model):
        raise ModelNotAvailableError(
            f"model directory {model} does not exist; pass an existing directory or a hub id such as "
            f"{DEFAULT_MODEL}"
        )
    try:
        tok = AutoTokenizer.from_pretrained(model, local_files_only=True)
        net = AutoModelForSeq2SeqLM.from_pretrained(model, local_files_only=True)
        log.info("loaded %s from the Hugging Face cache", model)
        return net.to(dev).eval(), tok
    except Exception as cache_exc:
        cache_error = cache_exc
    log.debug("%s is not usable from the cache: %s", model, _one_line(cache_error))
    if _hub_offline():
        raise ModelNotAvailableError(
            f"model {model!r} is not in the Hugging Face cache ({hf_cache_dir()}) and the hub is offline "
            f"(HF_HUB_OFFLINE=1). {_fetch_hint(model, option)}."
        ) from cache_error
    if not _hub_reachable():
        raise ModelNotAvailableError(
            f"model {model!r} is not in the Hugging Face cache ({hf_cache_dir()}) and the hub "
            f"({_endpoint()}) cannot be reached. {_fetch_hint(model, option)}."
        ) from cache_error
    log.info("downloading %s into the Hugging Face cache (%s)", model, hf_cache_dir())
    try:
        tok = AutoTokenizer.from_pretrained(model)
        net = AutoModelForSeq2SeqLM.from_pretrained(model)
    except Exception as exc:
        raise ModelNotAvailableError(
            f"model {model!r} is not in the Hugging Face cache ({hf_cache_dir()}) and could not be downloaded "
            f"({_one_line(exc)}). {_fetch_hint(model, option)}."
        ) from exc
    return net.to(dev).eval(), tok


def ensure_model(model: str, *, option: str = "--le-model") -> None:
    """Make sure ``model`` (a local directory or hub id) can be loaded: a directory with its files, the
    Hugging Face cache, or a download into it now; raises :class:`ModelNotAvailableError` (one line, as
    :func:`load_model`) otherwise. Loads no weights into memory."""
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelNotAvailableError(f"model directory {local} has no config.json; it needs the files of "
                                         "`save_pretrained`")
        return
    if _looks_like_path(model):
        raise ModelNotAvailableError(
            f"model directory {model} does not exist; pass an existing directory or a hub id such as {DEFAULT_MODEL}"
        )
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(model, local_files_only=True)
        return
    except Exception as cache_exc:
        cache_error = cache_exc
    if _hub_offline() or not _hub_reachable():
        raise ModelNotAvailableError(
            f"model {model!r} is not in the Hugging Face cache ({hf_cache_dir()}) and the hub cannot be reached. "
            f"{_fetch_hint(model, option)}."
        ) from cache_error
    try:
        snapshot_download(model)
    except Exception as exc:
        raise ModelNotAvailableError(
            f"model {model!r} could not be downloaded ({_one_line(exc)}). {_fetch_hint(model, option)}."
        ) from exc


def _endpoint() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.ENDPOINT)
    except Exception:  # pragma: no cover
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


class LanguageEnhancer:
    """A keyword-to-text model and its tokenizer, ready to turn class names into sentences."""

    def __init__(self, model, tokenizer, *, device: str | torch.device | None = "auto", model_id: str = ""):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.model_id = model_id

    @classmethod
    def from_pretrained(
        cls, model: str = DEFAULT_MODEL, *, device: str | torch.device | None = "auto", option: str = "--model"
    ):
        """Load ``model`` (a hub id or a local directory); see :func:`load_model`."""
        net, tok = load_model(model, device, option=option)
        return cls(net, tok, device=device, model_id=model)

    @classmethod
    def smoke(cls, classnames: Sequence[str], *, device: str | torch.device | None = "cpu", init_seed: int = 0):
        """The tiny random T5 with a locally built tokenizer (no download); its sentences are random words."""
        from synthdata.prompts._smoke import SMOKE_MODEL_ID, build_smoke

        net, tok = build_smoke(classnames, init_seed=init_seed)
        return cls(net, tok, device=device, model_id=SMOKE_MODEL_ID)

    @torch.inference_mode()
    def _generate(self, texts: list[str], n: int, cfg: LEConfig, seed: int) -> list[str]:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=64)
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            out = self.model.generate(
                **enc,
                do_sample=True,
                top_k=cfg.top_k,
                top_p=cfg.top_p,
                temperature=cfg.temperature,
                max_new_tokens=cfg.max_new_tokens,
                num_return_sequences=n,
            )
        return [" ".join(s.split()) for s in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def generate(
        self,
        classnames: Sequence[str],
        config: LEConfig | None = None,
        *,
        inputs: Sequence[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> LEResult:
        """``config.per_class`` unique sentences for each class (fewer where sampling ran out; see
        ``LEResult.shortfalls``). ``inputs``: what the model is given for each class (default: the class
        name, :func:`keyword_input`; e.g. the paper's typed labels, :func:`synthdata.prompts.le_labels`);
        the sentences are still checked against the class names. ``progress`` is called with the number of
        newly kept sentences."""
        cfg = config or LEConfig()
        n_cls = len(classnames)
        inputs = [keyword_input(c) for c in (classnames if inputs is None else inputs)]
        if len(inputs) != n_cls:
            raise ValueError(f"{len(inputs)} model inputs for {n_cls} classes")
        kept: list[list[str]] = [[] for _ in range(n_cls)]
        keys: list[set[str]] = [set() for _ in range(n_cls)]
        stats = [ClassStats(i, c, cfg.per_class) for i, c in enumerate(classnames)]
        calls = 0
        for rnd in range(cfg.max_rounds):
            pending = [i for i in range(n_cls) if len(kept[i]) < cfg.per_class and not stats[i].saturated]
            if not pending:
                break
            before = {i: len(kept[i]) for i in pending}
            # later rounds ask for more: what was missing times oversample, doubled each round up to a cap
            grow = min(2**rnd, MAX_ROUND_GROWTH)
            want = {i: math.ceil((cfg.per_class - len(kept[i])) * cfg.oversample * grow) for i in pending}
            per_row = max(1, min(cfg.num_return_sequences, max(want.values()), cfg.batch_size))
            rows = [i for i in pending for _ in range(math.ceil(want[i] / per_row))]
            rows_per_call = max(1, cfg.batch_size // per_row)
            for i in pending:
                stats[i].rounds += 1
            for start in range(0, len(rows), rows_per_call):
                chunk = rows[start : start + rows_per_call]
                if all(len(kept[i]) >= cfg.per_class for i in set(chunk)):
                    continue
                outs = self._generate([inputs[i] for i in chunk], per_row, cfg, _call_seed(cfg.seed, rnd, calls))
                calls += 1
                new = 0
                for r, ci in enumerate(chunk):
                    for sent in outs[r * per_row : (r + 1) * per_row]:
                        new += self._accept(ci, classnames[ci], sent, kept, keys, stats[ci], cfg)
                if progress is not None and new:
                    progress(new)
            # a whole oversampled round that added nothing: the model has no more to say about this class
            for i in pending:
                if len(kept[i]) == before[i] < cfg.per_class:
                    stats[i].saturated = True
        for i in range(n_cls):
            stats[i].unique = len(kept[i])
        shortfalls = {s.class_index: s.shortfall for s in stats if s.shortfall}
        if shortfalls:
            log.warning(
                "%d of %d classes got fewer than %d unique sentences (at most %d rounds)",
                len(shortfalls), n_cls, cfg.per_class, cfg.max_rounds,
            )
        return LEResult(kept, stats, cfg, model_id=self.model_id, calls=calls, shortfalls=shortfalls)

    def generate_resumable(
        self,
        classnames: Sequence[str],
        config: LEConfig | None = None,
        *,
        journal: str | Path | None = None,
        block_classes: int = DEFAULT_BLOCK_CLASSES,
        inputs: Sequence[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> LEResult:
        """Like :meth:`generate`, in blocks of ``block_classes`` classes, each finished block appended to
        ``journal`` (JSONL, fsynced) so that an interrupted run picks up after its last finished block.

        Block ``b`` samples with its own seed derived from ``(config.seed, b)``, so the result is the same
        whether or not the run was interrupted, and whichever blocks were restored. A journal written with
        other classes, settings, model, device type or block size is ignored and started over. The journal is left in
        place; the caller removes it once its output is safely written. ``inputs`` as in :meth:`generate`.
        """
        cfg = config or LEConfig()
        if block_classes < 1:
            raise ValueError(f"block_classes must be at least 1, got {block_classes}")
        names = list(classnames)
        given = list(inputs) if inputs is not None else None
        if given is not None and len(given) != len(names):
            raise ValueError(f"{len(given)} model inputs for {len(names)} classes")
        starts = list(range(0, len(names), block_classes))
        key = _journal_key(names, cfg, f"{self.model_id}@{self.device.type}", block_classes, given)
        done = _read_journal(Path(journal), key) if journal is not None else {}
        if done:
            log.info("resuming language enhancement: %d of %d blocks restored from %s", len(done), len(starts), journal)
        fh = _open_journal(Path(journal), key, fresh=not done) if journal is not None else None
        sentences: list[list[str]] = []
        stats: list[ClassStats] = []
        calls = 0
        try:
            for b, start in enumerate(starts):
                block = names[start : start + block_classes]
                if b in done:
                    part = done[b]
                    if progress is not None:
                        progress(sum(len(x) for x in part.sentences))
                else:
                    # ``inputs`` only when given: generate() overrides written before it existed still work
                    extra = {"inputs": given[start : start + block_classes]} if given is not None else {}
                    part = self.generate(block, replace(cfg, seed=_block_seed(cfg.seed, b)), progress=progress, **extra)
                    for st in part.stats:
                        st.class_index += start
                    if fh is not None:
                        _append_block(fh, b, part)
                sentences.extend(part.sentences)
                stats.extend(part.stats)
                calls += part.calls
        finally:
            if fh is not None:
                fh.close()
        shortfalls = {st.class_index: st.shortfall for st in stats if st.shortfall}
        return LEResult(sentences, stats, cfg, model_id=self.model_id, calls=calls, shortfalls=shortfalls)

    @staticmethod
    def _accept(ci, name, sent, kept, keys, st: ClassStats, cfg: LEConfig) -> int:
        if len(kept[ci]) >= cfg.per_class:
            return 0
        st.generated += 1
        if not normalize_text(sent):
            st.empty += 1
            return 0
        repaired = False
        if not contains_class(sent, name):
            st.missing_class += 1
            if cfg.on_missing_class == "drop":
                st.dropped += 1
                return 0
            if cfg.on_missing_class == "repair":
                sent = repair_sentence(sent, name)
                repaired = True
        key = normalize_text(sent)
        if key in keys[ci]:
            st.duplicates += 1
            return 0
        keys[ci].add(key)
        kept[ci].append(sent)
        if repaired:
            st.repaired += 1
        return 1


# --- the resume journal of generate_resumable -------------------------------------------------------


def _block_seed(seed: int, block: int) -> int:
    digest = hashlib.sha256(f"synthdata.prompts.le.block:{seed}:{block}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _journal_key(
    names: list[str], cfg: LEConfig, model_id: str, block_classes: int, inputs: list[str] | None = None
) -> str:
    settings = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
    parts: list = [JOURNAL_VERSION, names, settings, model_id, block_classes]
    if inputs is not None:  # only then, so a run with the class names as inputs keeps its journal key
        parts.append(inputs)
    blob = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _read_journal(path: Path, key: str) -> dict[int, LEResult]:
    """Finished blocks of a journal written with ``key``; {} when there is none or it is from other settings.
    A torn last line (a crash while appending) is ignored: that block is simply redone."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return {}
    try:
        head = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        head = {}
    if head.get("key") != key:
        if lines:
            log.info("ignoring %s: written with other classes, settings or model; starting over", path)
        return {}
    done: dict[int, LEResult] = {}
    for line in lines[1:]:
        try:
            rec = json.loads(line)
            stats = [ClassStats(**st) for st in rec["stats"]]
            done[int(rec["block"])] = LEResult(rec["sentences"], stats, LEConfig(), calls=int(rec["calls"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            log.debug("skipping a torn line of %s", path)
    return done


def _open_journal(path: Path, key: str, *, fresh: bool):
    path.parent.mkdir(parents=True, exist_ok=True)
    if fresh:
        fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the caller
        fh.write(json.dumps({"journal": "synthdata.prompts.le", "version": JOURNAL_VERSION, "key": key}) + "\n")
        _sync(fh)
        return fh
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):  # drop a torn last line before appending after it
        with open(path, "r+b") as raw:
            raw.truncate(keep)
    return open(path, "a", encoding="utf-8")


def _append_block(fh, block: int, part: LEResult) -> None:
    rec = {"block": block, "calls": part.calls, "sentences": part.sentences, "stats": [asdict(st) for st in part.stats]}
    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    _sync(fh)


def _sync(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())


JOINS = ("tidy", "plain")


def le_prompts(result: LEResult, classnames: Sequence[str], prefix: str, suffix: str = "", *, join: str = "tidy"):
    """Prompt records from a Language Enhancement result: ``f"{prefix} {sentence}{suffix}"`` per sentence.

    ``join="tidy"``: :func:`synthdata.prompts.apply_domain` (a leading article lower-cased, a doubled article
    dropped). ``"plain"``: the strings put together as they are, as the paper's generation script does
    (``'a centered satellite photo of ' + sentence``).
    """
    from synthdata.prompts._registry import apply_domain
    from synthdata.prompts.records import PromptRecord, prompt_id

    if join not in JOINS:
        raise ValueError(f"join must be one of {JOINS}, got {join!r}")
    out = []
    for ci, sents in enumerate(result.sentences):
        for n, s in enumerate(sents):
            text = apply_domain(s, prefix, suffix) if join == "tidy" else plain_join(s, prefix, suffix)
            out.append(PromptRecord(prompt_id(ci, n), ci, classnames[ci], text, "le"))
    return out


def plain_join(sentence: str, prefix: str, suffix: str = "") -> str:
    """``prefix + " " + sentence + suffix``, the sentence unchanged (no prefix: the sentence alone)."""
    return f"{prefix.strip()} {sentence}{suffix}" if prefix.strip() else f"{sentence}{suffix}"
