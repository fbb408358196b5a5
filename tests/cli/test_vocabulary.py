"""One flag vocabulary: the same concept has the same flag in every command, and no flag means two things."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from synthdata.tools._cli import flag_of
from synthdata.tools._cli.reference import commands, markdown

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cmds():
    return commands()


def test_one_flag_per_concept_and_one_concept_per_flag(cmds) -> None:
    flags_of: dict[str, set[str]] = defaultdict(set)
    concepts_of: dict[str, set[str]] = defaultdict(set)
    for cmd in cmds.values():
        for flag, concept in cmd.flags().items():
            flags_of[concept].add(flag)
            concepts_of[flag].add(concept)
    assert {c: f for c, f in flags_of.items() if len(f) > 1} == {}
    assert {f: c for f, c in concepts_of.items() if len(c) > 1} == {}
    for concept, flags in flags_of.items():
        assert flags == {flag_of(concept)}, concept


# The inconsistencies this vocabulary replaced: (concept, its flag, commands that must spell it so).
AGREED = [
    ("clip_model", "--clip-model", ["synth-filter", "synth-tune", "synth-pipeline"]),
    ("clip_pretrained", "--clip-pretrained", ["synth-filter", "synth-tune", "synth-pipeline"]),
    ("keep_per_class", "--keep-per-class", ["synth-filter", "synth-pipeline"]),
    ("prompts_per_class", "--prompts-per-class", ["synth-prompts"]),
    ("filter_rule", "--filter-rule", ["synth-filter", "synth-pipeline"]),
    ("few_shot", "--few-shot", ["synth-generate", "synth-tune", "synth-pipeline"]),
    ("weights_cache", "--weights-cache", ["synth-generate", "synth-filter", "synth-pipeline"]),
    ("feature_cache", "--feature-cache", ["synth-tune"]),
    ("fresh", "--fresh", ["synth-prompts", "synth-filter", "synth-tune", "synth-pretrain train", "synth-pipeline"]),
    ("weight_decay", "--weight-decay", ["synth-tune", "synth-pretrain train", "synth-pretrain transfer"]),
    ("warmup_epochs", "--warmup-epochs", ["synth-tune", "synth-pretrain train", "synth-pipeline"]),
    ("grad_clip", "--grad-clip", ["synth-tune", "synth-pretrain train"]),
    ("label_smoothing", "--label-smoothing", ["synth-tune", "synth-pretrain train"]),
    ("precision", "--precision", ["synth-generate", "synth-filter", "synth-tune", "synth-pretrain train"]),
    ("le_model", "--le-model", ["synth-prompts", "synth-pipeline"]),
    ("prompt_method", "--prompt-method", ["synth-prompts", "synth-pipeline"]),
    ("eval", "--eval", ["synth-tune", "synth-pipeline", "synth-pretrain transfer"]),
    ("src", "--in", ["synth-filter", "synth-tune"]),
]


@pytest.mark.parametrize(("concept", "flag", "names"), AGREED, ids=[a[0] for a in AGREED])
def test_the_agreed_spellings(cmds, concept: str, flag: str, names: list[str]) -> None:
    for name in names:
        assert cmds[name].flags().get(flag) == concept, name


def test_progress_and_run_options_are_everywhere(cmds) -> None:
    for name, cmd in cmds.items():
        if name == "synth-glide-check" or name.startswith("synth-shards"):  # no progress bars to hide
            continue
        flags = cmd.flags()
        assert {"--config", "--quiet", "-v"} <= set(flags), name


def test_device_defaults_to_auto_everywhere(cmds) -> None:
    for name, cmd in cmds.items():
        action = next((a for a in cmd.parser._actions if "--device" in a.option_strings), None)
        if action is not None:
            assert action.default in ("auto", None), name  # None: synth-generate's cuda:LOCAL_RANK rule


def test_the_reference_is_up_to_date() -> None:
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == markdown(), (
        "docs/cli.md is stale: run uv run python -m synthdata.tools._cli.reference > docs/cli.md"
    )
