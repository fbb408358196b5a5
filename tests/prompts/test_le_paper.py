"""The paper recipe of Language Enhancement: the labels as LE.py types them, no class-name repair, generate()'s
max_length of 20, the EuroSAT prefix only (joined as typed); checked with the tiny smoke T5."""

from __future__ import annotations

import json

import pytest
import torch

from synthdata.prompts import get_dataset, le_labels
from synthdata.prompts.config import RECIPES, PromptsConfig
from synthdata.prompts.le import LanguageEnhancer, LEConfig, le_prompts, plain_join
from synthdata.shards.options import build_config
from synthdata.tools.prompts import main

PAPER_FLAGS = ["--le-labels", "paper", "--prompt-domain", "paper", "--on-missing-class", "keep", "--max-new-tokens", "19"]


def test_the_paper_recipe_settings():
    cfg = build_config(PromptsConfig, RECIPES, "paper")
    assert (cfg.le_labels, cfg.prompt_domain, cfg.join) == ("paper", "paper", "plain")
    le = cfg.le_config()
    assert (le.on_missing_class, le.max_new_tokens, le.per_class, le.top_k, le.top_p, le.temperature) == (
        "keep", 19, 200, 50, 1.0, 1.0
    )
    default = PromptsConfig()
    assert (default.le_labels, default.prompt_domain, default.join, default.on_missing_class) == (
        "names", "dataset", "tidy", "repair"
    )
    assert default.le_config().max_new_tokens == 32
    # the recipe's flags (what the CLI tests below pass with --smoke) are the recipe
    assert dict(zip(PAPER_FLAGS[::2], PAPER_FLAGS[1::2], strict=True)) == {
        "--le-labels": "paper", "--prompt-domain": "paper", "--on-missing-class": "keep", "--max-new-tokens": "19"
    }
    assert RECIPES["paper"] == {"le_labels": "paper", "prompt_domain": "paper", "on_missing_class": "keep",
                                "max_new_tokens": 19}


def test_domain_and_inputs_by_recipe():
    paper, default = build_config(PromptsConfig, RECIPES, "paper"), PromptsConfig()
    spec = get_dataset("eurosat")
    assert paper.domain("eurosat", spec.prefix, spec.suffix) == ("a centered satellite photo of", "")
    assert paper.domain("cub", "a photo of", ", a type of bird") == ("", "")
    assert default.domain("cub", "a photo of", ", a type of bird") == ("a photo of", ", a type of bird")
    explicit = PromptsConfig(prompt_domain="paper", prefix="a sketch of")
    assert explicit.domain("cub", "a photo of", ", a type of bird") == ("a sketch of", "")
    assert paper.le_inputs(list(spec.classnames), "eurosat") == le_labels("eurosat", "paper")
    assert default.le_inputs(list(spec.classnames), "eurosat") is None


class Recording(LanguageEnhancer):
    """The smoke model, recording the texts every generate() call is given."""

    texts: list[str]

    def _generate(self, texts, n, cfg, seed):
        self.texts.extend(texts)
        return super()._generate(texts, n, cfg, seed)


def _smoke(words):
    enhancer = LanguageEnhancer.smoke(words)
    enhancer.__class__ = Recording
    enhancer.texts = []
    return enhancer


def test_the_model_is_given_the_labels_as_typed_and_sentences_are_kept_unrepaired():
    names = list(get_dataset("eurosat").classnames)
    labels = le_labels("eurosat", "paper")
    enhancer = _smoke(names + labels)
    cfg = LEConfig(per_class=4, on_missing_class="keep", max_new_tokens=19, seed=1)
    result = enhancer.generate(names, cfg, inputs=labels)
    assert set(enhancer.texts) == set(labels) and "a Annual Crop Land" in enhancer.texts
    missing = sum(st.missing_class for st in result.stats)
    assert missing > 0  # random words rarely name the class: kept as generated all the same
    assert all(st.repaired == 0 and st.dropped == 0 for st in result.stats)
    assert all(len(s) == 4 for s in result.sentences)
    for name, sents in zip(names, result.sentences, strict=True):
        assert not any(s.startswith(f"{name}, ") for s in sents)  # what repair would have written
    repaired = enhancer.generate(names, LEConfig(per_class=4, max_new_tokens=19, seed=1), inputs=labels)
    assert sum(st.repaired for st in repaired.stats) > 0  # the default policy on the same model does repair


def test_19_new_tokens_is_generates_default_max_length_of_20():
    enhancer = LanguageEnhancer.smoke(["annual crop land"])
    enc = enhancer.tokenizer(["a Annual Crop Land"], return_tensors="pt")
    outs = []
    for kwargs in ({"max_length": 20}, {"max_new_tokens": 19}):
        torch.manual_seed(0)
        outs.append(enhancer.model.generate(**enc, do_sample=True, top_k=50, num_return_sequences=8, **kwargs))
    assert torch.equal(outs[0], outs[1])
    assert outs[0].shape[1] <= 20  # the decoder start token and at most 19 new ones
    cfg = LEConfig(per_class=8, max_new_tokens=19, num_return_sequences=8, on_missing_class="keep")
    sents = enhancer._generate(["a Annual Crop Land"], 8, cfg, seed=0)
    assert max(len(s.split()) for s in sents) <= 19


def test_plain_join_keeps_the_sentence_as_generated():
    assert plain_join("The river bends.", "a centered satellite photo of") == (
        "a centered satellite photo of The river bends."
    )
    assert plain_join("The river bends.", "") == "The river bends."
    from synthdata.prompts.le import LEResult

    result = LEResult([["The river bends."]], [], LEConfig())
    tidy = le_prompts(result, ["river"], "a centered satellite photo of")[0].prompt
    plain = le_prompts(result, ["river"], "a centered satellite photo of", join="plain")[0].prompt
    assert (tidy, plain) == ("a centered satellite photo of the river bends.", "a centered satellite photo of The river bends.")
    with pytest.raises(ValueError):
        le_prompts(result, ["river"], "", join="fancy")


def _run(tmp_path, dataset, *flags):
    out = tmp_path / f"{dataset}.jsonl"
    assert main(["--dataset", dataset, "--smoke", "--prompts-per-class", "3", "--out", str(out), "--quiet", *flags]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return rows, json.loads(out.with_name(out.name + ".config.json").read_text())


def test_synth_prompts_paper_settings_prefix_eurosat_only(tmp_path):
    rows, meta = _run(tmp_path, "eurosat", *PAPER_FLAGS)
    assert meta["prefix"] == "a centered satellite photo of" and meta["prompt_domain"] == "paper"
    assert meta["le_labels"] == {"kind": "paper", "inputs": le_labels("eurosat", "paper")}
    assert meta["le_config"]["on_missing_class"] == "keep" and meta["le_config"]["max_new_tokens"] == 19
    assert all(r["prompt"].startswith("a centered satellite photo of ") for r in rows)
    assert sum(r["repaired"] for r in meta["classes_summary"]) == 0

    rows, meta = _run(tmp_path, "cub", *PAPER_FLAGS)
    assert (meta["prefix"], meta["suffix"]) == ("", "")
    names = list(get_dataset("cub").classnames)
    enhancer = LanguageEnhancer.smoke(names + le_labels("cub", "paper"))
    cfg = LEConfig(per_class=3, on_missing_class="keep", max_new_tokens=19)
    result = enhancer.generate_resumable(names, cfg, inputs=le_labels("cub", "paper"))
    assert [r["prompt"] for r in rows] == [s for sents in result.sentences for s in sents]  # the bare sentences


def test_synth_prompts_default_still_prefixes_and_repairs(tmp_path):
    rows, meta = _run(tmp_path, "cub")
    assert (meta["prefix"], meta["suffix"]) == ("a photo of", ", a type of bird") and "le_labels" not in meta
    assert all(r["prompt"].startswith("a photo of ") and r["prompt"].endswith(", a type of bird") for r in rows)
    assert "prompt_domain" not in meta and meta["le_config"]["max_new_tokens"] == 12  # the smoke recipe's
