"""The stages of a tuning run one by one: check_inputs creates nothing, prepare hands the caller's bundle
back when the run fails, fine-tuning restores the frozen encoder on failure, the record's pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthdata.clip import DEFAULT_TEMPLATES, load_clip
from synthdata.shards import demo_classes
from synthdata.tune import DataError, FeatureCache, TuneConfig, load_image_set, run_tuning, sample_few_shot
from synthdata.tune.batchnorm import batchnorm_state, has_placeholder_statistics
from synthdata.tune.data import DecodedImages, image_loader
from synthdata.tune.evaluate import evaluate_logits
from synthdata.tune.inputs import check_inputs
from synthdata.tune.outputs import output_files, training_record
from synthdata.tune.run import Scores

CLASSES = demo_classes(4)
TINY = {"model": "synthdata-tiny-vit", "pretrained": "none", "epochs": 2, "workers": 0, "wise_alphas": ()}


def _tree(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_check_inputs_loads_the_data_and_creates_nothing(demo, tmp_path):
    before = _tree(tmp_path)
    cfg = TuneConfig(**TINY, shots=2, seed=3)
    out = tmp_path / "new" / "T"
    inputs = check_inputs(
        cfg,
        classnames=CLASSES,
        templates=DEFAULT_TEMPLATES[:1],
        eval_data=demo["eval"],
        out=out,
        train=demo["train"],  # one path, not a list
        few_shot=demo["real"],
    )
    assert _tree(tmp_path) == before
    assert inputs.out == out and inputs.cache_root == out / "feature_cache" and inputs.num_classes == 4
    assert inputs.syn_set is not None and inputs.syn_set.kind == "shards" and len(inputs.syn_set) == 64
    assert inputs.eval_set.kind == "imagefolder" and inputs.real_set is not None
    expected = sample_few_shot(load_image_set(demo["real"], 4).labels, 2, 3, 4)
    assert np.array_equal(inputs.real_idx, expected)
    no_cache = check_inputs(
        TuneConfig(**TINY, use_cache=False),
        classnames=CLASSES,
        templates=DEFAULT_TEMPLATES[:1],
        eval_data=demo["eval"],
        out=out,
        few_shot=None,
        train=[demo["train"]],
        cache_dir=tmp_path / "c",
    )
    assert no_cache.cache_root is None and no_cache.real_set is None and no_cache.real_idx is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"classnames": CLASSES[:1]}, "at least 2 classes"),
        ({"train": ()}, "nothing to train on"),
        ({"few_shot": "REAL"}, "--shots"),
        ({"eval_data": "MISSING"}, "not a directory"),
    ],
)
def test_check_inputs_names_the_bad_input(demo, tmp_path, change, message):
    fill = {"REAL": demo["real"], "MISSING": tmp_path / "missing"}
    kwargs = {
        "classnames": CLASSES,
        "templates": DEFAULT_TEMPLATES[:1],
        "eval_data": demo["eval"],
        "out": tmp_path / "T",
        "train": [demo["train"]],
    }
    kwargs.update({k: fill.get(v, v) if isinstance(v, str) else v for k, v in change.items()})
    with pytest.raises(DataError, match=message):
        check_inputs(TuneConfig(**TINY), **kwargs)
    assert not (tmp_path / "T").exists()


def _run(demo, out, bundle, on_epoch=None, **overrides):
    return run_tuning(
        TuneConfig(**{**TINY, **overrides}),
        classnames=CLASSES,
        templates=DEFAULT_TEMPLATES[:1],
        eval_data=demo["eval"],
        out=out,
        train=[demo["train"]],
        bundle=bundle,
        cache_dir=demo["cache"],
        on_epoch=on_epoch,
    )


def test_a_failed_finetuning_run_hands_the_frozen_encoder_back(demo, tmp_path):
    bundle = load_clip("synthdata-tiny-vit", "none")
    before = {k: v.clone() for k, v in bundle.model.visual.state_dict().items()}
    out = tmp_path / "o"

    def stop(row):
        raise KeyboardInterrupt  # after the first epoch's checkpoint

    with pytest.raises(KeyboardInterrupt):
        _run(demo, out, bundle, on_epoch=stop, finetune=True, batch_size=32, lr=1e-3)
    after = bundle.model.visual.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    saved = torch.load(out / "checkpoint.pt", weights_only=True)["modules"]["visual"]
    assert saved.keys() == before.keys()
    assert any(not torch.equal(before[k], saved[k]) for k in before)  # it did train, and kept the epoch
    assert not any(p.requires_grad for p in bundle.model.visual.parameters())


def test_a_failed_run_gives_the_placeholder_batchnorm_statistics_back(demo, tmp_path, monkeypatch):
    def boom(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(FeatureCache, "get", boom)
    bundle = load_clip("synthdata-tiny-rn", "none", seed=0)
    placeholders = batchnorm_state(bundle.model.visual)
    out = tmp_path / "new" / "T"
    with pytest.raises(RuntimeError, match="disk on fire"):
        _run(demo, out, bundle, model="synthdata-tiny-rn", bn_calibration=16)
    assert has_placeholder_statistics(bundle.model.visual)
    after = batchnorm_state(bundle.model.visual)
    assert all(torch.equal(after[k], placeholders[k]) for k in placeholders)
    # The estimate was saved before the failure, so the directory stays for the rerun.
    assert _tree(tmp_path / "new") == ["T", "T/batchnorm.safetensors"]


def test_best_wise_alpha_breaks_ties_towards_the_middle():
    tuned = evaluate_logits(torch.eye(2), torch.tensor([0, 1]))
    assert Scores(tuned, {"0.0": 0.5, "0.4": 0.7, "0.8": 0.7, "1.0": 0.6}).best_alpha == "0.4"
    assert Scores(tuned, {"0.0": 0.5, "0.1": 0.7, "0.8": 0.7, "1.0": 0.6}).best_alpha == "0.8"
    assert Scores(tuned, {"0.0": 0.5, "1.0": 0.6}).best_alpha == "1.0"


def test_record_pieces():
    assert training_record([], resumed_from=0, run_id="r") == {
        "steps": 0,
        "resumed_from_epoch": 0,
        "run_id": "r",
        "final_train_loss": None,
    }
    rows = [{"step": 4, "loss": 1.0}, {"step": 8, "loss": 0.123456789}]
    assert training_record(rows, resumed_from=1, run_id="r")["final_train_loss"] == 0.123457
    assert training_record(rows, resumed_from=1, run_id="r")["steps"] == 8
    plain = output_files(finetune=False, batchnorm=False)
    assert "encoder" not in plain and "batchnorm" not in plain and plain["head"] == "head.safetensors"
    full = output_files(finetune=True, batchnorm=True)
    assert full.keys() - plain.keys() == {"encoder", "batchnorm"}


def test_image_loader_caps_the_workers_at_the_work_units(demo):
    train = load_image_set(demo["train"], 4)
    units = len(DecodedImages(train, [0, 1], None).units)
    assert units == 1  # both samples lie in the first shard
    loader = image_loader(train, [0, 1], np.asarray, batch_size=8, workers=16)
    assert loader.num_workers == 1 and not loader.pin_memory
    idx, images, labels = next(iter(loader))
    assert sorted(idx.tolist()) == [0, 1] and images.shape[0] == 2
    assert dict(zip(idx.tolist(), labels.tolist(), strict=True)) == {i: int(train.labels[i]) for i in (0, 1)}
