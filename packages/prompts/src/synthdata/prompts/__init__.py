"""synthdata.prompts: class-name registries, CLIP templates and Language Enhancement.

Public API::

    list_datasets() -> list[str]              # the 17 built-in datasets of the paper
    get_dataset(name) -> DatasetSpec           # class names, templates, domain prefix/suffix
    find_dataset_by_classes(names)             # the built-in dataset with exactly these classes, or None
    load_class_list(path) -> tuple[str, ...]   # txt / JSON / CSV class lists
    template_prompts(...)                      # the template method
    head_text, filter_text, le_labels          # a dataset's text by recipe: the registry's, or the paper code's
    folder_names(name)                         # the names each class's folder may go by (ImageFolder matching)
    LanguageEnhancer, LEConfig, le_prompts     # Language Enhancement with a keyword-to-text T5
    PromptRecord, write_prompts, read_prompts  # the prompts JSONL contract

``LanguageEnhancer`` pulls in torch/transformers; the registry and templates do not need them, so they
are imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthdata.prompts._registry import (
    GENERIC_PREFIX,
    GENERIC_TEMPLATES,
    DatasetSpec,
    apply_domain,
    dataset_sources,
    find_dataset_by_classes,
    get_dataset,
    list_datasets,
    load_class_list,
)
from synthdata.prompts.errors import ClassListError, ModelNotAvailableError, PromptsError, UnknownDatasetError
from synthdata.prompts.folders import folder_names
from synthdata.prompts.paper import (
    PAPER,
    filter_text,
    head_text,
    le_labels,
    paper_domain,
    paper_labels,
    text_sources,
)
from synthdata.prompts.records import FIELDS, SOURCES, PromptRecord, prompt_id, read_prompts, write_prompts
from synthdata.prompts.templates import template_prompts

if TYPE_CHECKING:
    from synthdata.prompts.le import (
        DEFAULT_MODEL,
        ClassStats,
        LanguageEnhancer,
        LEConfig,
        LEResult,
        le_prompts,
    )

_LAZY = {"DEFAULT_MODEL", "ClassStats", "LanguageEnhancer", "LEConfig", "LEResult", "le_prompts"}

__all__ = [
    "DEFAULT_MODEL",
    "FIELDS",
    "GENERIC_PREFIX",
    "GENERIC_TEMPLATES",
    "PAPER",
    "SOURCES",
    "ClassListError",
    "ClassStats",
    "DatasetSpec",
    "LEConfig",
    "LEResult",
    "LanguageEnhancer",
    "ModelNotAvailableError",
    "PromptRecord",
    "PromptsError",
    "UnknownDatasetError",
    "apply_domain",
    "dataset_sources",
    "filter_text",
    "find_dataset_by_classes",
    "folder_names",
    "get_dataset",
    "head_text",
    "le_labels",
    "le_prompts",
    "list_datasets",
    "load_class_list",
    "paper_domain",
    "paper_labels",
    "prompt_id",
    "read_prompts",
    "template_prompts",
    "text_sources",
    "write_prompts",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from synthdata.prompts import le

        return getattr(le, name)
    raise AttributeError(f"module 'synthdata.prompts' has no attribute {name!r}")
