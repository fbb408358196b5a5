"""The template method: prompts made by filling a dataset's CLIP templates with each class name."""

from __future__ import annotations

from collections.abc import Sequence

from synthdata.prompts.records import PromptRecord, prompt_id


def template_prompts(
    classnames: Sequence[str],
    templates: Sequence[str],
    per_class: int,
    *,
    prefix: str | None = None,
    suffix: str = "",
) -> list[PromptRecord]:
    """``per_class`` prompts for every class, cycling through ``templates`` in order.

    With ``prefix`` given, the templates are replaced by the single basic prompt
    ``f"{prefix} {{}}{suffix}"`` (the paper's "basic" strategy, e.g. "a centered satellite photo of forest").
    Templates repeat when ``per_class`` exceeds their number.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    if prefix is not None:
        templates = (f"{prefix.strip()} {{}}{suffix}".strip(),)
    if not templates:
        raise ValueError("no templates to fill")
    for t in templates:
        if t.count("{}") != 1:
            raise ValueError(f"template {t!r} must contain exactly one '{{}}'")
    out = []
    for ci, name in enumerate(classnames):
        for n in range(per_class):
            prompt = templates[n % len(templates)].replace("{}", name)
            out.append(PromptRecord(prompt_id(ci, n), ci, name, prompt, "template"))
    return out
