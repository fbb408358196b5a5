"""Errors raised by synthdata.prompts; each message says what to do next."""

from __future__ import annotations


class PromptsError(Exception):
    """Base class of the errors this package raises on bad input or a missing model."""


class UnknownDatasetError(PromptsError, ValueError):
    """A dataset name that is not in the registry (the message lists close matches)."""


class ClassListError(PromptsError, ValueError):
    """A class-list file that cannot be read or holds no usable class names."""


class ModelNotAvailableError(PromptsError, OSError):
    """The Language Enhancement model is neither a local directory nor in the Hugging Face cache."""
