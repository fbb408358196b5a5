"""Errors of the generation runner; each message names the input at fault and the fix."""

from __future__ import annotations


class GenerateError(ValueError):
    """A generation job cannot run as asked (bad prompts, references, settings or output directory)."""
