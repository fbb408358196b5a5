"""The command-line reference (``docs/cli.md``), written from the commands themselves.

``uv run python -m synthdata.tools._cli.reference > docs/cli.md`` rewrites it; a test checks that the file is
up to date, so the reference cannot drift from the flags.
"""

from __future__ import annotations

import argparse
import importlib
from collections import defaultdict

from synthdata.tools._cli.builder import Command
from synthdata.tools._cli.vocabulary import VOCABULARY

#: Every ``synth-*`` command built on :class:`Command`: (name, module, subcommand argument or None).
COMMANDS: tuple[tuple[str, str, str | None], ...] = (
    ("synth-prompts", "synthdata.tools.prompts", None),
    ("synth-generate", "synthdata.tools.generate", None),
    ("synth-filter", "synthdata.tools.filter", None),
    ("synth-tune", "synthdata.tools.tune", None),
    ("synth-pretrain train", "synthdata.tools.pretrain", "train"),
    ("synth-pretrain transfer", "synthdata.tools.pretrain", "transfer"),
    ("synth-pipeline", "synthdata.tools.pipeline", None),
    ("synth-glide-check", "synthdata.tools.glide_check", None),
)


def commands() -> dict[str, Command]:
    """``{name: Command}`` for every command (and subcommand) of the vocabulary."""
    out: dict[str, Command] = {}
    for name, module, sub in COMMANDS:
        build = importlib.import_module(module).build_command
        out[name] = build(sub) if sub is not None else build()
    out.update(importlib.import_module("synthdata.tools.shards").build_commands())  # its subcommands
    return out


def _default(cmd: Command, dest: str) -> str:
    action = next((a for a in cmd.parser._actions if a.dest == dest and a.help != argparse.SUPPRESS), None)
    if action is None or action.default in (None, argparse.SUPPRESS, [], False) or action.required:
        return ""
    value = action.default
    if isinstance(value, tuple):
        value = ",".join(str(v) for v in value)
    return f"`{value}`"


def markdown() -> str:
    """``docs/cli.md``: the vocabulary (concept → flag → commands), then each command's options."""
    cmds = commands()
    used: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, cmd in cmds.items():
        for flag, concept in cmd.flags().items():
            used[concept][flag].append(name)
    lines = [
        "# Command-line reference",
        "",
        "Written by `uv run python -m synthdata.tools._cli.reference > docs/cli.md` from the commands themselves",
        "(a test fails when this file is out of date). Every command is built from the config dataclasses of its",
        "package by one builder (`synthdata.tools._cli`), so one concept has one flag everywhere.",
        "",
        "Every command also takes `--config FILE` (TOML, YAML or JSON; keys are the flag names, with `-` or `_`;",
        "flags given on the command line override the file), and those with recipes take `--recipe NAME`",
        "(`--smoke` is `--recipe smoke`). Defaults are layered: the package's own, then the recipe, then the file,",
        "then the flags. Spellings of earlier releases still work for one release and print a deprecation line.",
        "",
        "## The vocabulary",
        "",
        "| concept | flag | commands |",
        "| --- | --- | --- |",
    ]
    for concept in sorted(used):
        for flag, names in sorted(used[concept].items()):
            lines.append(f"| {concept} | `{flag}` | {', '.join(sorted(names))} |")
    for name, cmd in cmds.items():
        lines += ["", f"## `{name}`", "", (cmd.parser.description or "").strip().splitlines()[0], ""]
        lines += ["| flag | default | meaning |", "| --- | --- | --- |"]
        for bound in cmd.bound.values():
            action = next(a for a in cmd.parser._actions if a.dest == bound.dest and a.help != argparse.SUPPRESS)
            text = (action.help or VOCABULARY.get(bound.concept, VOCABULARY["config"]).help).replace("%%", "%")
            text = text.replace("|", "\\|")
            lines.append(f"| `{bound.flag}` | {_default(cmd, bound.dest)} | {text} |")
        if cmd.deprecated:
            old = ", ".join(f"`{o}` → `{new}`" for o, (_, new) in sorted(cmd.deprecated.items()))
            lines += ["", f"Deprecated spellings (one more release): {old}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
