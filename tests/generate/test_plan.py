"""The plan: keys, seeds, order and shards are fixed by the prompts and settings alone."""

import pytest

from synthdata.diffusion.runner import (
    GenerateConfig,
    GenerateError,
    Prompt,
    class_list,
    cut_shards,
    item_key,
    key_base,
    normalise_prompts,
    plan_items,
)
from synthdata.shards import WorkSplit, item_seed
from synthdata.shards.encoding import validate_key

from ._helpers import prompt_records


def _prompts(n_per_class=2):
    return normalise_prompts(
        [Prompt(r["id"], r["class_index"], r["class_name"], r["prompt"]) for r in prompt_records(n_per_class)]
    )


def test_items_are_replicate_major_with_seeds_from_keys():
    prompts = _prompts()
    items = plan_items(prompts, images_per_prompt=2, seed=7)
    assert [it.replicate for it in items] == [0] * 6 + [1] * 6
    for rep in (0, 1):  # each replicate holds every prompt once
        block = items[6 * rep : 6 * (rep + 1)]
        assert sorted(it.key for it in block) == sorted(item_key(p.id, rep) for p in prompts)
    assert all(it.seed == item_seed(7, it.key, stream="synth-generate") for it in items)
    assert len({it.seed for it in items}) == 12
    # more replicates append items; the earlier ones (keys, seeds and order) do not move
    more = plan_items(prompts, images_per_prompt=3, seed=7)
    assert more[:12] == items


def test_the_order_is_a_seeded_permutation_that_mixes_classes():
    prompts = _prompts(n_per_class=20)  # listed class by class, as synth-prompts writes them
    items = plan_items(prompts, images_per_prompt=1, seed=7)
    assert items == plan_items(prompts, images_per_prompt=1, seed=7)  # deterministic
    assert [it.key for it in items] != [it.key for it in plan_items(prompts, images_per_prompt=1, seed=8)]
    assert [it.prompt.id for it in items] != [p.id for p in prompts]
    classes = len({p.class_index for p in prompts})
    for shard in cut_shards(items, 10):  # without the permutation a shard of 10 would hold one class
        assert len({it.prompt.class_index for it in shard.items}) >= min(classes, 2)


def test_shards_do_not_depend_on_world_size():
    items = plan_items(_prompts(), images_per_prompt=2, seed=0)
    shards = cut_shards(items, 5)
    assert [s.name for s in shards] == [f"gen-000-00000{i}.tar" for i in range(3)]
    assert [len(s.items) for s in shards] == [5, 5, 2]
    for world in (1, 2, 3, 5):
        taken = [s for r in range(world) for s in WorkSplit(r, world).take(shards)]
        assert sorted(s.name for s in taken) == [s.name for s in shards]


def test_unsafe_ids_give_valid_unique_keys():
    ids = ["cats/1", "cats.1", "a b", "ünïcode", "-lead", "x" * 300]
    keys = {item_key(i, 3) for i in ids}
    assert len(keys) == len(ids)
    for k in keys:
        validate_key(k)
    assert key_base("c0001-00002") == "c0001-00002"
    assert item_key("p", 1, shot=2) == "p-s02-00001"


def test_prompt_checks():
    ok = dict(id="a", class_index=0, class_name="cat", prompt="a cat")
    with pytest.raises(GenerateError, match="appears twice"):
        normalise_prompts([Prompt(**ok), Prompt(**ok)])
    with pytest.raises(GenerateError, match="named both"):
        normalise_prompts([Prompt(**ok), Prompt(**(ok | {"id": "b", "class_name": "dog"}))])
    with pytest.raises(GenerateError, match="holds no prompts"):
        normalise_prompts([])
    with pytest.raises(GenerateError, match="empty text"):
        normalise_prompts([Prompt(**(ok | {"prompt": " "}))])


def test_class_list_gaps_and_explicit_list():
    prompts = normalise_prompts([Prompt("a", 0, "cat", "x"), Prompt("b", 2, "car", "y")])
    with pytest.raises(GenerateError, match=r"no class with index \[1\].*--classes"):
        class_list(prompts)
    assert class_list(prompts, ["cat", "dog", "car"]) == ["cat", "dog", "car"]
    with pytest.raises(GenerateError, match="'car' in the prompts but 'bus'"):
        class_list(prompts, ["cat", "dog", "bus"])


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"size": 128}, "--size"),
        ({"images_per_prompt": 0}, "--images-per-prompt"),
        ({"batch_size": 0}, "--batch-size"),
        ({"image_format": "gif"}, "--format"),
        ({"shots": 2}, "go together"),
        ({"reference_preprocessing": "stretch"}, "center-crop or shorter-side-64, got 'stretch'"),
        ({"quality": 0}, "--quality"),
    ],
)
def test_bad_settings(changes, match):
    with pytest.raises(GenerateError, match=match):
        GenerateConfig(**({"out": "x"} | changes)).resolved()


def test_defaults_are_the_papers():
    c = GenerateConfig(out="x").resolved()
    assert (c.guidance, c.base_respacing, c.up_respacing, c.upsample_temp) == (3.0, "100", "fast27", 0.997)
    s = GenerateConfig(out="x", smoke=True, size=256).resolved()
    assert (s.base_respacing, s.up_respacing, s.shard_size) == ("3", "ddim2", 250)
