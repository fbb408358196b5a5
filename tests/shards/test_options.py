"""Config fields with their docs, and named recipes applied to them."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pytest

from synthdata.shards.options import build_config, field_concept, field_defaults, field_help, option


@dataclass(kw_only=True)
class _Cfg:
    model: str = option("RN50", help="CLIP architecture", concept="clip_model")
    batch_size: int = option(64, help="images a batch")
    alphas: tuple[float, ...] = option(help="mixing", default_factory=lambda: (0.0, 1.0))


RECIPES = {"smoke": {"model": "tiny", "batch_size": 2}, "paper": {"batch_size": 512}}


def test_fields_carry_help_and_concept() -> None:
    f = {x.name: x for x in fields(_Cfg)}
    assert field_help(_Cfg, "model") == "CLIP architecture"
    assert field_concept(f["model"]) == "clip_model" and field_concept(f["batch_size"]) == "batch_size"
    assert field_defaults(_Cfg) == {"model": "RN50", "batch_size": 64, "alphas": (0.0, 1.0)}


def test_recipes_then_overrides() -> None:
    assert build_config(_Cfg, RECIPES) == _Cfg()
    assert build_config(_Cfg, RECIPES, "smoke") == _Cfg(model="tiny", batch_size=2)
    assert build_config(_Cfg, RECIPES, "smoke", batch_size=8, model=None) == _Cfg(model="tiny", batch_size=8)


def test_unknown_recipe_or_field_is_refused() -> None:
    with pytest.raises(ValueError, match="--recipe 'fast': _Cfg has no such recipe; choose one of default, paper, smoke"):
        build_config(_Cfg, RECIPES, "fast")
    with pytest.raises(ValueError, match="unknown setting"):
        build_config(_Cfg, {"bad": {"nope": 1}}, "bad")
