"""Documented config fields and named recipes: the run contract every package's config follows.

A package declares its settings as a dataclass whose fields are made with :func:`option` (a default and a
one-line help text, plus the *concept* the field stands for, so that the command-line builder in
``synthdata.tools`` gives the same concept the same flag in every command). Named recipes are plain dicts of
field overrides kept next to the dataclass; :func:`build_config` applies one. The dataclass defaults are the
package's own recipe (``"default"``); every default lives once, there.

This module imports nothing heavy: command lines are built from these dataclasses before torch is loaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import MISSING
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_RECIPE = "default"


def option(
    default: Any = MISSING,
    *,
    help: str,
    concept: str | None = None,
    choices: tuple[Any, ...] | None = None,
    metavar: str | None = None,
    negate: bool = False,
    cli: bool = True,
    default_factory: Any = MISSING,
    **extra: Any,
) -> Any:
    """A dataclass field with its documentation for the command line.

    ``concept`` names what the value means across commands (default: the field's name); the builder maps it to
    one flag spelling. ``negate``: a ``True``-by-default bool set to ``False`` by its flag (``resume`` →
    ``--fresh``). ``cli=False`` keeps a field off the command line (set by code, recorded in configs).
    """
    metadata = {
        "help": help,
        "concept": concept,
        "choices": choices,
        "metavar": metavar,
        "negate": negate,
        "cli": cli,
        **extra,
    }
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_help(cls: type, name: str) -> str:
    """The help text of field ``name`` of the config dataclass ``cls`` ('' when it has none)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return str(f.metadata.get("help", ""))
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def field_concept(f: dataclasses.Field) -> str:
    """The concept a field stands for: its ``concept`` metadata, else its name."""
    return f.metadata.get("concept") or f.name


def field_defaults(cls: type) -> dict[str, Any]:
    """``{name: default}`` of the fields of ``cls`` that have one (default factories are called)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out


def recipe_overrides(recipes: Mapping[str, Mapping[str, Any]], name: str, *, owner: str) -> dict[str, Any]:
    """The field overrides of recipe ``name`` (``default`` is the dataclass defaults: no overrides)."""
    if name == DEFAULT_RECIPE:
        return dict(recipes.get(DEFAULT_RECIPE, {}))
    if name not in recipes:
        known = ", ".join(sorted({DEFAULT_RECIPE, *recipes}))
        raise ValueError(f"--recipe {name!r}: {owner} has no such recipe; choose one of {known}")
    return dict(recipes[name])


def check_fields(cls: type, values: Mapping[str, Any], *, source: str) -> None:
    """Refuse keys that are not fields of ``cls``, naming the first few and where they came from."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(
            f"{source}: unknown setting(s) {', '.join(unknown[:5])} for {cls.__name__}; "
            f"known: {', '.join(sorted(names))}"
        )


def build_config(
    cls: type[T],
    recipes: Mapping[str, Mapping[str, Any]],
    recipe: str = DEFAULT_RECIPE,
    /,
    **overrides: Any,
) -> T:
    """``cls`` with recipe ``recipe`` applied, then ``overrides`` (``None`` overrides are ignored, so an
    option left unset keeps the recipe's value)."""
    values = recipe_overrides(recipes, recipe, owner=cls.__name__)
    values.update({k: v for k, v in overrides.items() if v is not None})
    check_fields(cls, values, source=f"recipe {recipe!r}")
    return cls(**values)


def resolve_device(name: str | None) -> str:
    """``auto`` (or None) → ``cuda`` when a CUDA device is visible, else ``cpu``; anything else as given."""
    if name not in (None, "", "auto"):
        return str(name)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
