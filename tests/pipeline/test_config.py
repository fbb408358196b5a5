"""PipelineConfig: validation, mode defaults, what each stage hashes."""

from __future__ import annotations

import pytest

from synthdata.tools._pipeline.config import (
    STAGE_KEYS,
    PipelineConfig,
    PipelineError,
    config_diff,
    config_hash,
    default_keep,
)


def test_needs_exactly_one_class_source(tmp_path):
    with pytest.raises(PipelineError, match="exactly one"):
        PipelineConfig()
    f = tmp_path / "c.txt"
    f.write_text("a\nb\n")
    with pytest.raises(PipelineError, match="exactly one"):
        PipelineConfig(dataset="cifar10", classes_file=str(f))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images_per_class": 0}, "--images-per-class"),
        ({"few_shot": "x"}, "go together"),
        ({"size": 128}, "--size"),
        ({"prompt_method": "gpt"}, "--prompt-method"),
        ({"images_per_prompt": 0}, "--images-per-prompt"),
        ({"eval_dir": "/nonexistent/eval"}, "no such file"),
        ({"warmup": -1.0}, "--warmup"),
    ],
)
def test_bad_values_name_the_flag(kwargs, message):
    with pytest.raises(PipelineError, match=message):
        PipelineConfig(dataset="cifar10", **kwargs)


def test_smoke_and_paper_defaults():
    smoke = PipelineConfig(dataset="cifar10", smoke=True).resolved()
    assert smoke.clip_model.startswith("synthdata-tiny") and smoke.size == 64 and smoke.images_per_class == 4
    paper = PipelineConfig(dataset="cifar10").resolved()
    assert (paper.clip_model, paper.clip_pretrained, paper.size, paper.base_respacing) == ("RN50", "openai", 256, "100")
    assert (paper.images_per_class, paper.images_per_prompt, paper.prompts_per_class) == (2000, 10, 200)
    assert paper.keep_per_class == default_keep(2000) == 800 and paper.prompt_method == "le"
    explicit = PipelineConfig(dataset="cifar10", smoke=True, images_per_class=9, epochs=1).resolved()
    assert (explicit.images_per_class, explicit.epochs, explicit.keep_per_class) == (9, 1, 4)


def test_few_shot_paper_defaults(tmp_path):
    cfg = PipelineConfig(dataset="eurosat", few_shot=str(tmp_path), shots=16).resolved()
    assert (cfg.images_per_class, cfg.keep_per_class, cfg.prompt_method) == (800, 800, "basic")


def test_keep_more_than_generated_is_refused():
    with pytest.raises(PipelineError, match="more than"):
        PipelineConfig(dataset="cifar10", images_per_class=2, keep_per_class=3).resolved()


def test_json_round_trip_and_paths_resolved(tmp_path):
    f = tmp_path / "classes.txt"
    f.write_text("cat\ndog\n")
    cfg = PipelineConfig(classes_file=str(f), smoke=True).resolved()
    assert cfg.classes_file == str(f.resolve()) and cfg.name == "classes"
    assert PipelineConfig.from_json(cfg.to_json()) == cfg


def test_stage_hash_ignores_execution_settings_and_other_stages():
    a = PipelineConfig(dataset="cifar10", smoke=True).resolved()
    b = PipelineConfig(dataset="cifar10", smoke=True, device="cpu", gen_batch_size=3).resolved()
    c = PipelineConfig(dataset="cifar10", smoke=True, epochs=7).resolved()
    for stage in STAGE_KEYS:
        assert config_hash(a.hashed_settings(stage)) == config_hash(b.hashed_settings(stage)), stage
    changed = [s for s in STAGE_KEYS if config_hash(a.hashed_settings(s)) != config_hash(c.hashed_settings(s))]
    assert changed == ["tune"]
    assert config_diff(a.hashed_settings("tune"), c.hashed_settings("tune")) == ["epochs: 3 -> 7"]


def test_warmup_is_hashed_only_when_given():
    # Runs made before --warmup existed (warmup None: synth-tune's default) keep their tune hash.
    a = PipelineConfig(dataset="cifar10", smoke=True).resolved()
    assert "warmup" not in a.hashed_settings("tune")
    b = PipelineConfig(dataset="cifar10", smoke=True, warmup=0.0).resolved()
    assert config_diff(a.hashed_settings("tune"), b.hashed_settings("tune")) == ["warmup: None -> 0.0"]
    changed = [s for s in STAGE_KEYS if config_hash(a.hashed_settings(s)) != config_hash(b.hashed_settings(s))]
    assert changed == ["tune"]


def test_prompts_per_class_covers_the_images():
    cfg = PipelineConfig(dataset="cifar10", images_per_class=10, images_per_prompt=3, smoke=True).resolved()
    assert cfg.prompts_per_class == 4
    assert cfg.hashed_settings("prompts")["prompts_per_class"] == 4


def test_recipe_paper_builds_every_stage_from_its_packages_paper_recipe():
    from synthdata.prompts import filter_text, head_text
    from synthdata.tools._pipeline.runner import head_texts

    cfg = PipelineConfig(dataset="eurosat", recipe="paper").resolved()
    prompts = cfg.stage_config("prompts")
    assert (prompts.le_labels, prompts.prompt_domain, prompts.on_missing_class, prompts.max_new_tokens) == (
        "paper", "paper", "keep", 19)
    generate = cfg.stage_config("generate", out="x").resolved()
    assert (generate.size, generate.reference_preprocessing) == (256, "shorter-side-64")
    tune = cfg.stage_config("tune")
    assert (tune.warmup_epochs, tune.frozen_few_shot_batch, tune.eval_every_epoch) == (0.0, 128, True)
    texts = head_texts(cfg, ["x"] * 10, ["{}"])
    assert (texts.filter_names, texts.filter_templates) == filter_text("eurosat", "paper")
    assert (texts.tune_names, texts.tune_templates) == head_text("eurosat", "paper")
    # the recipe enters the hashes of the stages it changes; the default recipe's hashes stay as they were
    assert cfg.hashed_settings("tune")["recipe"] == "paper"
    assert "recipe" not in PipelineConfig(dataset="eurosat").resolved().hashed_settings("tune")
    default = head_texts(PipelineConfig(dataset="eurosat").resolved(), ["a"], ["t {}"])
    assert default.filter_names is None and default.tune_names == ["a"] and default.class_aliases
