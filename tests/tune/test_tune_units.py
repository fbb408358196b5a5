"""synthdata.tune building blocks: losses, schedule, config, head, WiSE-FT, metrics, data, batch order."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthdata.tune import (
    ClassifierHead,
    DataError,
    TuneConfig,
    confusion_matrix,
    cosine_lr,
    distillation_loss,
    evaluate_logits,
    interpolate_state,
    load_head,
    load_image_set,
    sample_few_shot,
    save_confusion_png,
    save_head,
    tuning_loss,
    wise_head,
    zeroshot_head,
)
from synthdata.tune._io import append_jsonl
from synthdata.tune.train import real_batch_indices, syn_epoch_order


def test_tuning_loss_is_the_official_convex_mix():
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 5), torch.randn(8, 5), torch.randint(0, 5, (8,))
    ce = F.cross_entropy(s, y)
    assert torch.allclose(tuning_loss(s, y, t, sl=0.0), ce)
    assert torch.allclose(tuning_loss(s, y, None, sl=0.0), ce)
    soft = -(F.softmax(t / 2.0, -1) * F.log_softmax(s, -1)).sum(-1).mean()
    assert torch.allclose(distillation_loss(s, t, 2.0), soft)
    assert torch.allclose(tuning_loss(s, y, t, sl=0.5, temperature=2.0), 0.5 * ce + 0.5 * soft)
    hard = F.cross_entropy(s, t.argmax(-1))
    assert torch.allclose(tuning_loss(s, y, t, sl=0.3, use_pseudo_labels=True), 0.7 * ce + 0.3 * hard)
    smoothed = F.cross_entropy(s, y, label_smoothing=0.1)
    assert torch.allclose(tuning_loss(s, y, t, sl=0.0, label_smoothing=0.1), smoothed)
    with pytest.raises(ValueError, match="zero-shot"):
        tuning_loss(s, y, None, sl=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tuning_loss(s, y, t, sl=1.5)


def test_distillation_gradient_pulls_towards_the_teacher():
    t = torch.tensor([[3.0, 0.0, -1.0]])
    s = torch.zeros(1, 3, requires_grad=True)
    distillation_loss(s, t, 1.0).backward()
    assert s.grad[0, 0] < 0 < s.grad[0, 2]  # gradient descent raises the teacher's top class


def test_cosine_schedule_warmup_and_decay():
    lrs = [cosine_lr(s, 10, 2, 1.0) for s in range(10)]
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert lrs[2] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:]))
    assert cosine_lr(10, 10, 2, 1.0) == pytest.approx(0.0)
    assert cosine_lr(0, 1, 0, 2e-3) == pytest.approx(2e-3)


def test_config_defaults_are_the_paper_recipe_and_validate():
    cfg = TuneConfig()
    assert (cfg.epochs, cfg.weight_decay, cfg.batch_size, cfg.real_batch_size) == (30, 0.1, 512, 32)
    assert (cfg.grad_clip, cfg.sl, cfg.sl_temperature) == (1.0, 0.5, 2.0)
    assert cfg.resolved_lr() == 2e-3
    assert TuneConfig(shots=4).resolved_lr() == 1e-3
    assert TuneConfig(lr=0.1, shots=4).resolved_lr() == 0.1
    assert cfg.wise_alphas[0] == 0.0 and cfg.wise_alphas[-1] == 1.0 and len(cfg.wise_alphas) == 11
    assert TuneConfig(wise_alphas=(0.5,)).wise_alphas == (0.0, 0.5, 1.0)
    json.dumps(cfg.to_json())
    for bad in (
        {"sl": 1.5},
        {"epochs": 0},
        {"shots": 0},
        {"sl": 0.0, "pseudo_labels": True},
        {"finetune": True, "precision": "fp16"},
    ):
        with pytest.raises(ValueError):
            TuneConfig(**bad)


def test_zeroshot_head_is_clip_logits_and_round_trips(tmp_path):
    torch.manual_seed(0)
    text = torch.randn(3, 16)
    feats = torch.randn(5, 16) * 7
    head = zeroshot_head(text, 100.0)
    expected = 100.0 * F.normalize(feats, dim=-1) @ F.normalize(text, dim=-1).T
    assert torch.allclose(head(feats), expected, atol=1e-4)
    path = save_head(
        head, tmp_path / "h.safetensors", classnames=["a", "b", "c"], extra={"kind": "zero-shot"}
    )
    loaded, meta = load_head(path)
    assert torch.equal(loaded.linear.weight, head.linear.weight) and meta["kind"] == "zero-shot"
    assert json.loads(meta["classnames"]) == ["a", "b", "c"]
    assert not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(ValueError):
        save_head(head, tmp_path / "x.safetensors", classnames=["a"])


def test_wise_ft_endpoints_are_exact_and_midpoint_is_linear():
    torch.manual_seed(0)
    a, b = ClassifierHead(torch.randn(3, 8)), ClassifierHead(torch.randn(3, 8), torch.randn(3))
    assert torch.equal(wise_head(a, b, 0.0).linear.weight, a.linear.weight)
    assert torch.equal(wise_head(a, b, 1.0).linear.bias, b.linear.bias)
    x = torch.randn(4, 8)
    mid = wise_head(a, b, 0.5)
    assert torch.allclose(mid(x), 0.5 * (a(x) + b(x)), atol=1e-5)
    with pytest.raises(ValueError):
        interpolate_state({"w": torch.zeros(1)}, {"v": torch.zeros(1)}, 0.5)


def test_metrics_and_confusion_png(tmp_path):
    logits = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [2.0, 0, 0], [0, 0, 2.0]])
    labels = torch.tensor([0, 1, 1, 2])
    ev = evaluate_logits(logits, labels, 4)
    assert ev.top1 == 0.75 and ev.per_class == [1.0, 0.5, 1.0, None]
    assert ev.confusion.tolist()[1] == [1, 1, 0, 0]
    assert ev.mean_per_class == pytest.approx(2.5 / 3)
    assert confusion_matrix(np.array([1]), np.array([0]), 2).tolist() == [[0, 1], [0, 0]]
    png = save_confusion_png(ev.confusion, ["a", "b", "c", "d"], tmp_path / "c.png", title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_few_shot_sampling_is_seeded_and_per_class():
    labels = np.repeat(np.arange(3), 10)
    a = sample_few_shot(labels, 4, seed=7)
    assert np.array_equal(a, sample_few_shot(labels, 4, seed=7))
    assert not np.array_equal(a, sample_few_shot(labels, 4, seed=8))
    assert np.bincount(labels[a]).tolist() == [4, 4, 4]
    with pytest.raises(DataError, match="fewer than --shots"):
        sample_few_shot(labels, 11, seed=0)


def test_batch_order_is_a_function_of_seed_epoch_and_step():
    assert torch.equal(syn_epoch_order(10, 0, 3), syn_epoch_order(10, 0, 3))
    assert not torch.equal(syn_epoch_order(10, 0, 3), syn_epoch_order(10, 0, 4))
    # One pass of real batches covers every sample once, the last batch short.
    batches = [real_batch_indices(s, 10, 4, seed=1) for s in range(3)]
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    assert torch.equal(real_batch_indices(5, 10, 4, 1), real_batch_indices(5, 10, 4, 1))


def test_image_sets(demo):
    train = load_image_set(demo["train"], 4)
    assert train.kind == "shards" and len(train) == 64 and train.class_counts(4) == [16] * 4
    ev = load_image_set(demo["eval"], 4)
    assert ev.kind == "imagefolder" and ev.classes == sorted(ev.classes) and len(ev) == 64
    assert train.fingerprint() == load_image_set(demo["train"], 4).fingerprint()
    assert next(iter(ev.iter_images([5])))[0] == 5
    with pytest.raises(DataError, match="class folders"):
        load_image_set(demo["eval"], 5)
    with pytest.raises(DataError, match="5 class names"):
        load_image_set(demo["train"], 5)
    with pytest.raises(DataError, match="not a directory"):
        load_image_set(demo["train"] / "missing", 4)


def test_append_jsonl_keeps_old_lines(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}')  # no trailing newline
    append_jsonl(path, {"b": 2})
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"a": 1}, {"b": 2}]


def test_classes_from_shards_find_the_templates_of_a_known_class_list(tmp_path):
    """A generation run named after its --out folder, holding exactly EuroSAT's classes, gets EuroSAT's
    templates for the zero-shot head; an unknown class list keeps the generic ones."""
    from synthdata.clip import DEFAULT_TEMPLATES
    from synthdata.prompts import get_dataset
    from synthdata.shards import DatasetInfo, make_demo, write_dataset_json
    from synthdata.tools.tune import build_command, resolve_head

    src = make_demo(tmp_path / "gen", classes=2, per_class=1, size=16)
    argv = ["--in", str(src), "--eval", str(src), "--out", str(tmp_path / "T"), "--classes-from-shards"]
    args = build_command().parser.parse_args(argv)
    assert resolve_head(args)[1] == list(DEFAULT_TEMPLATES)
    eurosat = get_dataset("eurosat")
    write_dataset_json(src, DatasetInfo(classes=list(eurosat.classnames), name="gen"))
    names, templates, source = resolve_head(args)[:3]
    assert names == list(eurosat.classnames) and templates == list(eurosat.templates) and "eurosat" in source
