"""Language Enhancement: class-name checks, de-duplication, drop/repair counting, shortfall, seeds, offline."""

import pytest

from synthdata.prompts import ModelNotAvailableError, get_dataset
from synthdata.prompts.le import (
    LanguageEnhancer,
    LEConfig,
    contains_class,
    keyword_input,
    le_prompts,
    load_model,
    normalize_text,
    repair_sentence,
)


class ScriptedEnhancer(LanguageEnhancer):
    """Returns scripted sentences per class input instead of sampling a model."""

    def __init__(self, script):
        self.script = {k: list(v) for k, v in script.items()}
        self.model_id = "scripted"
        self.device = None
        self.calls = []

    def _generate(self, texts, n, cfg, seed):
        self.calls.append((tuple(texts), n))
        out = []
        for t in texts:
            for _ in range(n):
                queue = self.script[t]
                out.append(queue.pop(0) if queue else "")
        return out


def test_normalize_text():
    assert normalize_text("  A Dog, runs!  ") == "a dog runs"
    assert normalize_text("a dog runs.") == normalize_text("A DOG   runs")
    assert normalize_text("...") == ""


@pytest.mark.parametrize(
    ("sentence", "name", "ok"),
    [
        ("A dog runs in the park.", "dog", True),
        ("Two dogs run.", "dog", True),
        ("Buses line the street.", "bus", True),
        ("Berries on a bush.", "berry", True),
        ("Leaves fall.", "leaf", True),
        ("A cat sleeps.", "dog", False),
        ("The highway runs by a farm.", "highway or road", True),
        ("A road through fields.", "highway or road", True),
        ("A farm in spring.", "highway or road", False),
        ("Fields of annual crop land.", "annual crop land", True),
        ("Fields of crop land.", "annual crop land", False),
        ("A Boeing 707-320 lands.", "707-320", True),
        ("Dogfish swim.", "dog", False),
        ("Boxes on a shelf.", "box", True),
        ("Knives on a board.", "knife", True),
        ("Glasses on a table.", "glass", True),
        ("A residential building by a road.", "residential buildings", True),
        ("Players catch the ball.", "cat", False),
        ("A card on the table.", "car", False),
        ("The anti-war march.", "ant", False),
        ("The dog's bone.", "dog", True),
    ],
)
def test_contains_class(sentence, name, ok):
    assert contains_class(sentence, name) is ok


def test_repair_and_keyword_input():
    assert repair_sentence("The cat sleeps.", "dog") == "dog, the cat sleeps."
    assert keyword_input("Chuck-will's-widow") == "Chuck-wills-widow"
    assert keyword_input("sea, or lake") == "sea or lake"


SCRIPT = {
    "dog": ["A dog runs.", "a dog runs", "A cat sleeps.", "", "Dogs play in snow.", "A dog barks."],
    "cat": ["A cat sleeps.", "A bird sings.", "A cat sleeps!", "Cats nap.", "A fish swims.", "A cat eats."],
}


def test_drop_counts_and_dedup():
    enh = ScriptedEnhancer(SCRIPT)
    cfg = LEConfig(per_class=3, on_missing_class="drop", num_return_sequences=6, oversample=2.0, max_rounds=1)
    res = enh.generate(["dog", "cat"], cfg)
    assert res.sentences[0] == ["A dog runs.", "Dogs play in snow.", "A dog barks."]
    assert res.sentences[1] == ["A cat sleeps.", "Cats nap.", "A cat eats."]
    dog, cat = res.stats
    assert (dog.generated, dog.duplicates, dog.empty, dog.missing_class, dog.dropped, dog.repaired) == (6, 1, 1, 1, 1, 0)
    assert (cat.generated, cat.duplicates, cat.missing_class, cat.dropped) == (6, 1, 2, 2)
    assert res.shortfalls == {}


def test_repair_counts():
    enh = ScriptedEnhancer(SCRIPT)
    cfg = LEConfig(per_class=4, on_missing_class="repair", num_return_sequences=6, oversample=1.5, max_rounds=1)
    res = enh.generate(["dog", "cat"], cfg)
    assert res.sentences[0] == ["A dog runs.", "dog, a cat sleeps.", "Dogs play in snow.", "A dog barks."]
    assert res.stats[0].repaired == 1 and res.stats[0].dropped == 0 and res.stats[0].missing_class == 1
    assert res.sentences[1][:2] == ["A cat sleeps.", "cat, a bird sings."]
    assert res.stats[1].repaired == 2


def test_shortfall_is_reported_not_raised():
    enh = ScriptedEnhancer({"dog": ["A dog runs."] * 100})
    cfg = LEConfig(per_class=5, max_rounds=3, num_return_sequences=4)
    res = enh.generate(["dog"], cfg)
    assert res.sentences == [["A dog runs."]]
    assert res.shortfalls == {0: 4}
    # round 1 adds nothing new, so the class is given up on instead of sampled for a third round
    assert res.stats[0].shortfall == 4 and res.stats[0].rounds == 2 and res.stats[0].saturated
    assert res.stats[0].duplicates > 0


def test_sampling_continues_while_it_finds_new_sentences():
    # two new sentences a round: more rounds, each asking for more, until per_class is reached
    script = {"dog": [f"A dog number {j // 8}." if j % 8 >= 2 else f"dog {j}" for j in range(4000)]}
    enh = ScriptedEnhancer(script)
    res = enh.generate(["dog"], LEConfig(per_class=40, num_return_sequences=4, oversample=1.0, max_rounds=10))
    st = res.stats[0]
    assert st.unique == 40 and not st.saturated and st.rounds >= 2 and res.shortfalls == {}


def test_batches_many_classes_per_call():
    names = [f"class{i}" for i in range(10)]
    enh = ScriptedEnhancer({n: [f"{n} number {j}" for j in range(50)] for n in names})
    res = enh.generate(names, LEConfig(per_class=8, num_return_sequences=8, batch_size=64))
    assert all(len(s) == 8 for s in res.sentences)
    # 12 wanted a class -> 2 rows of 8 samples; 20 rows, at most 8 rows (64 sequences) a call
    assert [len(texts) for texts, _ in enh.calls] == [8, 8, 4]
    assert {n for _, n in enh.calls} == {8}
    assert res.calls == 3


def test_smoke_model_unique_and_deterministic():
    names = get_dataset("cifar10").classnames[:4]
    enh = LanguageEnhancer.smoke(names)
    cfg = LEConfig(per_class=6, seed=3, max_new_tokens=8)
    a = enh.generate(names, cfg)
    b = LanguageEnhancer.smoke(names).generate(names, cfg)
    c = enh.generate(names, LEConfig(per_class=6, seed=4, max_new_tokens=8))
    assert a.sentences == b.sentences
    assert a.sentences != c.sentences
    for sents in a.sentences:
        assert len(sents) == 6
        assert len({normalize_text(s) for s in sents}) == 6
    for name, sents in zip(names, a.sentences, strict=True):
        assert all(contains_class(s, name) for s in sents)  # repair is the default
    recs = le_prompts(a, names, "a photo of", ", a type of thing")
    assert all(r.prompt.startswith("a photo of ") and r.prompt.endswith(", a type of thing") for r in recs)
    assert [r.id for r in recs[:2]] == ["c0000-00000", "c0000-00001"]


def test_smoke_drop_counts_balance():
    names = ("dog", "cat")
    res = LanguageEnhancer.smoke(names).generate(
        names, LEConfig(per_class=3, on_missing_class="drop", max_rounds=2, max_new_tokens=6)
    )
    for st in res.stats:
        assert st.repaired == 0 and st.dropped == st.missing_class
        assert st.generated == st.unique + st.duplicates + st.empty + st.dropped
        assert st.shortfall == res.shortfalls.get(st.class_index, 0)


def test_greedy_sampling_gives_a_shortfall():
    names = ("dog", "cat")
    res = LanguageEnhancer.smoke(names).generate(names, LEConfig(per_class=4, top_k=1, max_rounds=2, max_new_tokens=6))
    # the random model's greedy sentence is the same every time (here even empty): at most one unique
    assert set(res.shortfalls) == {0, 1} and min(res.shortfalls.values()) >= 3


def test_offline_error_names_model_and_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    bogus = "synthdata-tests/no-such-model-xyz"
    with pytest.raises(ModelNotAvailableError) as info:
        load_model(bogus, device="cpu")
    msg = str(info.value)
    assert bogus in msg and "cache" in msg and "HF_HUB_OFFLINE" in msg and "--smoke" in msg
    assert "pass --model /path" in msg
    with pytest.raises(ModelNotAvailableError, match="pass --le-model /path"):  # synth-pipeline's option
        LanguageEnhancer.from_pretrained(bogus, device="cpu", option="--le-model")


def test_local_directory_model_round_trip(tmp_path):
    names = ("dog", "cat")
    smoke = LanguageEnhancer.smoke(names)
    smoke.model.save_pretrained(tmp_path / "m")
    smoke.tokenizer.save_pretrained(tmp_path / "m")
    enh = LanguageEnhancer.from_pretrained(str(tmp_path / "m"), device="cpu")
    cfg = LEConfig(per_class=3, seed=1, max_new_tokens=6)
    assert enh.generate(names, cfg).sentences == smoke.generate(names, cfg).sentences


def test_config_validation():
    with pytest.raises(ValueError):
        LEConfig(on_missing_class="ignore")  # "keep" became a policy (the paper's recipe)
    with pytest.raises(ValueError):
        LEConfig(per_class=0)


def test_unreachable_hub_fails_fast_in_one_line(monkeypatch, tmp_path):
    from synthdata.prompts import le

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(le, "_hub_offline", lambda: False)
    monkeypatch.setattr(le, "_hub_reachable", lambda timeout=3.0: False)
    bogus = "synthdata-tests/no-such-model-xyz"
    with pytest.raises(ModelNotAvailableError) as info:
        load_model(bogus, device="cpu")
    msg = str(info.value)
    assert bogus in msg and "cannot be reached" in msg and "hf download" in msg and "\n" not in msg


@pytest.mark.parametrize("path", ["./no/such/dir", "/no/such/dir", "~/no-such-dir-xyz", "a/b/c"])
def test_missing_model_directory_is_named(path):
    with pytest.raises(ModelNotAvailableError, match=r"model directory .* does not exist"):
        load_model(path, device="cpu")


def test_bad_model_directory_error_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotAvailableError) as info:
        load_model(str(tmp_path), device="cpu")
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


class _Crash(Exception):
    pass


def _spy(enh, seen, crash_at=None):
    real = LanguageEnhancer.generate

    def generate(classnames, config=None, *, progress=None):
        seen.append(tuple(classnames))
        if crash_at is not None and len(seen) == crash_at:
            raise _Crash
        return real(enh, classnames, config, progress=progress)

    enh.generate = generate


def test_resume_after_interruption_gives_the_same_result(tmp_path):
    names = ("dog", "cat", "bird", "frog", "ship")
    cfg = LEConfig(per_class=3, seed=5, max_new_tokens=6)
    enh = LanguageEnhancer.smoke(names)
    full = enh.generate_resumable(names, cfg, block_classes=2)
    assert [len(s) for s in full.sentences] == [3] * 5
    assert [st.class_index for st in full.stats] == list(range(5))

    journal = tmp_path / "out" / "j.jsonl"
    seen: list[tuple[str, ...]] = []
    _spy(enh, seen, crash_at=3)
    with pytest.raises(_Crash):
        enh.generate_resumable(names, cfg, journal=journal, block_classes=2)
    with open(journal, "a") as fh:  # a torn line, as a crash in the middle of an append leaves
        fh.write('{"block": 2, "calls": 1, "sente')

    seen.clear()
    _spy(enh, seen)
    ticks: list[int] = []
    res = enh.generate_resumable(names, cfg, journal=journal, block_classes=2, progress=ticks.append)
    assert seen == [("ship",)]  # blocks 0 and 1 came from the journal
    assert res.sentences == full.sentences
    assert [vars(s) for s in res.stats] == [vars(s) for s in full.stats]
    assert sum(ticks) == 15 and res.calls == full.calls

    # other settings: the journal is ignored and rewritten
    seen.clear()
    enh.generate_resumable(names, LEConfig(per_class=3, seed=6, max_new_tokens=6), journal=journal, block_classes=2)
    assert len(seen) == 3
    lines = journal.read_text().splitlines()
    assert len(lines) == 4 and all(line.endswith("}") for line in lines)
