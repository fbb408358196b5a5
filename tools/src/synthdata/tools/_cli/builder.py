"""Build a command line from config dataclasses: one flag per concept, recipes, config files, deprecations.

A :class:`Command` wraps an ``argparse.ArgumentParser``. Options come from config fields (their help text,
type, choices and default, see :func:`synthdata.shards.options.option`) or, for the few that no config
backs (``--in``, ``--dataset``...), from the vocabulary. Defaults are layered: the dataclass's own, then the
``--recipe`` (``--smoke`` is ``--recipe smoke``), then ``--config FILE``, then the flags given.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass
from typing import Any

from synthdata.shards.options import DEFAULT_RECIPE, field_concept
from synthdata.tools._cli.configfile import ConfigFileError, read_config_file
from synthdata.tools._cli.vocabulary import VOCABULARY, flag_of

SMOKE_RECIPE = "smoke"
_METAVARS: dict[Any, str] = {int: "N", float: "X", str: "TEXT"}


def comma_floats(text: str) -> tuple[float, ...]:
    """``"0,0.5,1"`` → ``(0.0, 0.5, 1.0)`` (an argparse type)."""
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return values


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _argparse_type(tp: Any) -> dict[str, Any]:
    """``type=``/``choices=`` for a field annotation."""
    tp = _strip_optional(tp)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        values = typing.get_args(tp)
        return {"type": type(values[0]), "choices": values}
    if origin is tuple:
        return {"type": comma_floats}
    if tp in (int, float, str):
        return {"type": tp}
    return {"type": str}


def _show_default(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return "none" if value is None else str(value)


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (``prog: error: ...; see prog --help``), like every other input error."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


@dataclass(slots=True)
class _Bound:
    """Where an option's value goes: ``dest`` in the namespace; ``field`` of ``owner`` when a config backs it."""

    dest: str
    concept: str
    flag: str
    owner: type | None = None
    field: str | None = None
    negate: bool = False


class Command:
    """One command's parser, built from the vocabulary and config dataclasses."""

    def __init__(self, prog: str, description: str | None) -> None:
        self.prog = prog
        self.parser = OneLineParser(
            prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        self.bound: dict[str, _Bound] = {}
        self.recipes: dict[str, dict[str, Any]] = {DEFAULT_RECIPE: {}}
        self.deprecated: dict[str, tuple[str, str]] = {}  # old flag -> (dest, new flag)
        self._required: list[tuple[str, str]] = []  # (dest, flag) of required options with an old spelling
        self._has_run_options = False

    # --- adding options -------------------------------------------------------------------------------
    def group(self, title: str) -> argparse._ArgumentGroup:
        return self.parser.add_argument_group(title)

    def add(
        self, concept: str, *, group: Any = None, dest: str | None = None, help: str | None = None, **kwargs: Any
    ) -> argparse.Action:
        """An option no config field backs; its flag and generic help come from the vocabulary."""
        entry = VOCABULARY.get(concept)
        flag = flag_of(concept)
        flags = [flag, "--verbose"] if flag == "-v" else [flag]
        takes_value = kwargs.get("action") not in ("store_true", "store_false", "count")
        if takes_value and "metavar" not in kwargs and entry is not None and entry.metavar:
            kwargs["metavar"] = entry.metavar
        text = help if help is not None else (entry.help.replace("%", "%%") if entry else "")
        action = (group or self.parser).add_argument(*flags, dest=dest or concept, help=text, **kwargs)
        self._bind(_Bound(action.dest, concept, flag, negate=kwargs.get("action") == "store_false"))
        return action

    def add_fields(
        self,
        cls: type,
        *,
        group: Any = None,
        only: Sequence[str] | None = None,
        exclude: Iterable[str] = (),
        help: Mapping[str, str] | None = None,
        required: Iterable[str] = (),
        types: Mapping[str, Callable[[str], Any]] | None = None,
    ) -> None:
        """An option for each field of the config dataclass ``cls`` (``only`` these, in this order);
        ``types`` replaces the argparse type of some (e.g. a path option's location check)."""
        hints = typing.get_type_hints(cls)
        by_name = {f.name: f for f in dataclasses.fields(cls)}
        names = list(only) if only is not None else [f.name for f in dataclasses.fields(cls)]
        skip, required = set(exclude), set(required)
        for name in names:
            f = by_name[name]
            if name in skip or not f.metadata.get("cli", True) or "help" not in f.metadata:
                continue
            self._add_field(cls, f, hints[name], group, (help or {}).get(name), name in required,
                            (types or {}).get(name))

    def _add_field(
        self,
        cls: type,
        f: dataclasses.Field,
        hint: Any,
        group: Any,
        help_text: str | None,
        required: bool,
        type_: Callable[[str], Any] | None = None,
    ) -> None:
        concept = field_concept(f)
        flag = flag_of(concept)
        if f.default is not MISSING:
            default = f.default
        else:
            default = f.default_factory() if f.default_factory is not MISSING else None  # type: ignore[misc]
        text = help_text if help_text is not None else str(f.metadata["help"]).replace("%", "%%")
        negate = bool(f.metadata.get("negate"))
        kwargs: dict[str, Any] = {"dest": f.name, "default": default}
        if _strip_optional(hint) is bool:
            kwargs["action"] = "store_false" if negate else "store_true"
        else:
            kwargs.update(_argparse_type(hint))
            if type_ is not None:
                kwargs["type"] = type_
            if f.metadata.get("choices"):
                kwargs["choices"] = f.metadata["choices"]
            entry = VOCABULARY.get(concept)
            metavar = f.metadata.get("metavar") or (entry.metavar if entry else None)
            metavar = metavar or _METAVARS.get(kwargs["type"]) or ("DIR" if type_ is not None else None)
            if metavar and "choices" not in kwargs:
                kwargs["metavar"] = metavar
            if required:
                kwargs["required"] = True
            elif "default" not in text and default is not None:
                text = f"{text} (default {_show_default(default)})"
        (group or self.parser).add_argument(flag, help=text, **kwargs)
        self._bind(_Bound(f.name, concept, flag, cls, f.name, negate))

    def _bind(self, bound: _Bound) -> None:
        for other in self.bound.values():
            if other.flag == bound.flag and other.dest != bound.dest:
                raise RuntimeError(f"{self.prog}: {bound.flag} is bound to both {other.dest} and {bound.dest}")
        self.bound[bound.dest] = bound

    def deprecate(self, old: str, dest: str, *, convert: Callable[[str], Any] | None = None) -> None:
        """Accept ``old`` (an earlier release's spelling) for ``dest`` with a one-line warning."""
        bound = self.bound[dest]
        action = next(a for a in self.parser._actions if a.dest == dest)
        kwargs: dict[str, Any] = {"dest": dest, "help": argparse.SUPPRESS, "default": argparse.SUPPRESS}
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            kwargs["action"] = "store_false" if isinstance(action, argparse._StoreFalseAction) else "store_true"
        else:
            kwargs["type"] = convert or action.type
            if action.nargs is not None:
                kwargs["nargs"] = action.nargs
            if isinstance(action, argparse._AppendAction):
                kwargs["action"] = "append"
        self.parser.add_argument(old, **kwargs)
        self.deprecated[old] = (dest, bound.flag)
        if action.required:  # either spelling satisfies it: checked after parsing
            action.required = False
            self._required.append((dest, bound.flag))

    def add_run_options(self, *, recipes: bool = True, quiet: bool = True) -> None:
        """``--config``, and with ``recipes`` ``--recipe``/``--smoke``; ``-v`` and (with ``quiet``) ``--quiet``."""
        g = self.group("run")
        self.add("config", group=g, default=None)
        if recipes:
            names = ", ".join(sorted(self.recipes))
            text = f"named settings to start from: {names} (default {DEFAULT_RECIPE})"
            self.add("recipe", group=g, default=None, help=text)
            self.add("smoke", group=g, action="store_true", default=False)
        if quiet:
            self.add("quiet", group=g, action="store_true", default=False)
        self.add("verbose", group=g, action="store_true", default=False)
        self._has_run_options = True

    def add_recipes(self, cls: type, recipes: Mapping[str, Mapping[str, Any]]) -> None:
        """Recipes of config ``cls`` (field overrides), translated to this command's option defaults."""
        dest_of = {b.field: b.dest for b in self.bound.values() if b.owner is cls}
        for name, overrides in recipes.items():
            target = self.recipes.setdefault(name, {})
            for field_name, value in overrides.items():
                if field_name in dest_of:
                    target[dest_of[field_name]] = value

    # --- parsing ---------------------------------------------------------------------------------------
    def _keys(self) -> dict[str, tuple[str, bool]]:
        """Config-file key → (dest, value means "the flag was given" for a negated option)."""
        keys: dict[str, tuple[str, bool]] = {}
        for b in self.bound.values():
            keys[b.dest] = (b.dest, False)
            keys[b.flag.lstrip("-").replace("-", "_")] = (b.dest, b.negate)
        for meta in ("config", "verbose", "quiet"):
            keys.pop(meta, None)
        keys["recipe"], keys["smoke"] = ("recipe", False), ("smoke", False)
        return keys

    def file_defaults(self, path: str) -> dict[str, Any]:
        """The options of config file ``path``, as ``{dest: value}``."""
        values = read_config_file(path)
        keys = self._keys()
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key not in keys:
                known = ", ".join(sorted(k for k in keys if "_" not in k or k in self.bound)[:12])
                raise ConfigFileError(f"--config {path}: {self.prog} has no option {key!r} (options: {known}, ...)")
            dest, flag_given = keys[key]
            out[dest] = (not value) if flag_given else value
        return out

    def recipe_name(self, args: argparse.Namespace) -> str:
        return getattr(args, "recipe", None) or (SMOKE_RECIPE if getattr(args, "smoke", False) else DEFAULT_RECIPE)

    def declare_recipes(self, names: Iterable[str]) -> None:
        """Recipe names the command resolves itself (no option defaults of their own)."""
        for name in names:
            self.recipes.setdefault(name, {})

    def _recipe_and_file(self, argv: list[str]) -> tuple[str, dict[str, Any]]:
        """The recipe (flags, else the config file, else ``default``) and the config file's option values."""
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--config")
        pre.add_argument("--recipe")
        pre.add_argument("--smoke", action="store_true")
        known, _ = pre.parse_known_args(argv)
        if known.recipe and known.smoke and known.recipe != SMOKE_RECIPE:
            self.parser.error(f"--smoke is --recipe smoke; drop one of --smoke and --recipe {known.recipe}")
        values: dict[str, Any] = {}
        if known.config:
            try:
                values = self.file_defaults(known.config)
            except ConfigFileError as exc:
                self.parser.exit(2, f"{self.prog}: error: {exc}\n")
        from_file = values.pop("recipe", None) or (SMOKE_RECIPE if values.pop("smoke", False) else None)
        recipe = known.recipe or (SMOKE_RECIPE if known.smoke else None) or from_file or DEFAULT_RECIPE
        if self._has_run_options and recipe not in self.recipes:
            self.parser.error(f"--recipe {recipe}: choose one of {', '.join(sorted(self.recipes))}")
        return recipe, values

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """Parse ``argv`` over the recipe's and the config file's defaults; warn about deprecated flags."""
        argv = list(sys.argv[1:] if argv is None else argv)
        recipe, from_file = self._recipe_and_file(argv)
        defaults = {**self.recipes.get(recipe, {}), **from_file}
        self.parser.set_defaults(**defaults)
        given = [a for a in self.parser._actions if a.required and a.dest in from_file]
        for action in given:  # a required option the config file gives is not required on the command line
            action.required = False
        try:
            args = self.parser.parse_args(argv)
        finally:
            for action in given:
                action.required = True
        missing = [flag for dest, flag in self._required if getattr(args, dest, None) is None]
        if missing:
            self.parser.error(f"the following arguments are required: {', '.join(missing)}")
        args.recipe = recipe if self._has_run_options else None
        for old, (_, new) in self.deprecated.items():
            if any(a == old or a.startswith(old + "=") for a in argv):
                print(
                    f"{self.prog}: warning: {old} is deprecated; use {new} (the old spelling goes in the next release)",
                    file=sys.stderr,
                )
        return args

    # --- building configs -----------------------------------------------------------------------------
    def values_for(self, cls: type, args: argparse.Namespace) -> dict[str, Any]:
        """``{field: value}`` of the options bound to fields of ``cls``."""
        bound = [b for b in self.bound.values() if b.owner is cls and hasattr(args, b.dest)]
        return {b.field: getattr(args, b.dest) for b in bound}

    def build(
        self,
        cls: type,
        args: argparse.Namespace,
        recipes: Mapping[str, Mapping[str, Any]] | None = None,
        **extra: Any,
    ) -> Any:
        """An instance of ``cls``: its recipe (for fields without an option), the options, then ``extra``."""
        values: dict[str, Any] = dict((recipes or {}).get(self.recipe_name(args), {}))
        values.update(self.values_for(cls, args))
        values.update(extra)
        return cls(**values)

    def flags(self) -> dict[str, str]:
        """``{flag: concept}`` of every option this command takes (for the vocabulary test and docs)."""
        return {b.flag: b.concept for b in self.bound.values()}
