"""Scores are the softmax of CLIP's zero-shot head, per sample, whatever the batching and workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthdata.clip import (
    DEFAULT_TEMPLATES,
    image_features,
    logit_scale,
    text_features,
    zeroshot_weights,
)
from synthdata.filter import ClassListError, score_shards
from synthdata.shards import (
    DatasetInfo,
    Sample,
    ShardWriter,
    iter_samples,
    read_dataset_json,
    write_dataset_json,
)

TEMPLATES = DEFAULT_TEMPLATES[:2]


def _reference(bundle, directory, classnames, templates):
    """One image at a time, the head built by hand: the numbers the batched scorer must reproduce."""
    head = zeroshot_weights(bundle, classnames, templates)
    out = {}
    for s in iter_samples(directory):
        feats = image_features(bundle, bundle.preprocess(s.image)[None])
        probs = (logit_scale(bundle) * feats @ head.T).softmax(-1)[0]
        out[s.key] = (s.cls, probs)
    return out


def test_confidence_is_softmax_of_zero_shot_head(demo_dir, tiny):
    classnames = read_dataset_json(demo_dir).classes
    result = score_shards(demo_dir, tiny, classnames, TEMPLATES, batch_size=5, num_workers=0)
    ref = _reference(tiny, demo_dir, classnames, TEMPLATES)
    assert [s.key for s in result.scores] == sorted(ref)
    assert not result.corrupt
    for s in result.scores:
        cls, probs = ref[s.key]
        assert s.class_index == cls
        assert s.confidence == pytest.approx(float(probs[cls]), abs=1e-5)
        assert s.top1 == int(probs.argmax())
        assert s.top1_confidence == pytest.approx(float(probs.max()), abs=1e-5)
        assert s.clip_score is None  # demo samples carry no prompt
        assert s.shard.endswith(".tar")


def test_batching_and_workers_do_not_change_scores(demo_dir, tiny):
    classnames = read_dataset_json(demo_dir).classes
    a = score_shards(demo_dir, tiny, classnames, TEMPLATES, batch_size=64, num_workers=0)
    b = score_shards(demo_dir, tiny, classnames, TEMPLATES, batch_size=3, num_workers=2)
    assert [s.key for s in a.scores] == [s.key for s in b.scores]
    np.testing.assert_allclose([s.confidence for s in a.scores], [s.confidence for s in b.scores], atol=1e-5)


def test_clip_score_is_cosine_with_own_prompt(tmp_path, tiny):
    rng = np.random.default_rng(0)
    prompts = ["a photo of a cat", "a photo of a dog", None]
    with ShardWriter(tmp_path, prefix="p", max_count=10) as w:
        for i, prompt in enumerate(prompts):
            meta = {"class_name": ["cat", "dog"][i % 2]} | ({"prompt": prompt} if prompt else {})
            w.write(Sample(f"k{i}", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), i % 2, meta))
    write_dataset_json(tmp_path, DatasetInfo(classes=["cat", "dog"], name="p"))
    result = score_shards(tmp_path, tiny, ["cat", "dog"], TEMPLATES, num_workers=0)
    images = {s.key: s.image for s in iter_samples(tmp_path)}
    for s, prompt in zip(result.scores, prompts, strict=True):
        if prompt is None:
            assert s.clip_score is None
            continue
        img = image_features(tiny, tiny.preprocess(images[s.key])[None])
        txt = text_features(tiny, [prompt])
        assert s.clip_score == pytest.approx(100 * float((img * txt).sum()), abs=1e-3)


def test_class_list_must_match_the_shards(demo_dir, tiny):
    classnames = read_dataset_json(demo_dir).classes
    with pytest.raises(ClassListError, match="has 3 names but"):
        score_shards(demo_dir, tiny, classnames[:3], TEMPLATES)
    swapped = [classnames[1], classnames[0], *classnames[2:]]
    with pytest.raises(ClassListError, match="class 0 is"):
        score_shards(demo_dir, tiny, swapped, TEMPLATES)
    # spelling differences in case and underscores are not a mismatch
    relaxed = [c.upper().replace(" ", "_") for c in classnames]
    assert len(score_shards(demo_dir, tiny, relaxed, TEMPLATES, num_workers=0).scores) == 12


def test_scores_are_probabilities(demo_dir, tiny):
    classnames = read_dataset_json(demo_dir).classes
    result = score_shards(demo_dir, tiny, classnames, TEMPLATES, num_workers=0)
    confs = torch.tensor([s.confidence for s in result.scores])
    assert bool(((confs > 0) & (confs < 1)).all())
    assert all(s.top1_confidence >= s.confidence - 1e-7 for s in result.scores)
