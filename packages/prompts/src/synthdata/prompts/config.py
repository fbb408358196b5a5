"""The settings of a prompts run (``synth-prompts``, the pipeline's prompts stage) and its named recipes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synthdata.shards.options import option

#: The paper's keyword-to-text model (T5-base fine-tuned on CommonGen).
DEFAULT_LE_MODEL = "mrm8488/t5-base-finetuned-common_gen"
METHODS = ("le", "template")

LABELS = ("names", "paper")
DOMAINS = ("dataset", "paper")

#: Named settings over the defaults of :class:`PromptsConfig` (``default``). ``smoke``: a tiny random T5 with
#: a locally built tokenizer (no download; its sentences are random words), short sentences. ``paper``: the
#: released code's Language Enhancement (``src/LE.py``, ``src/glide/glide_zsl.py``): the labels as typed there
#: (``'a Annual Crop Land'``), sentences kept as generated (no class-name check), ``generate()``'s default
#: ``max_length=20``, which counts T5's decoder start token (19 new tokens), and EuroSAT's prefix only,
#: joined as typed. ``docs/reproduce.md`` lists what stays different.
RECIPES: dict[str, dict[str, Any]] = {
    "smoke": {"smoke": True, "max_new_tokens": 12},
    "paper": {"le_labels": "paper", "prompt_domain": "paper", "on_missing_class": "keep", "max_new_tokens": 19},
}


@dataclass(kw_only=True, slots=True)
class PromptsConfig:
    """How prompts are written for each class. Defaults are the paper's Language Enhancement recipe."""

    method: str = option("le", help="le (Language Enhancement, the paper's) or template (the data set's CLIP "
                         "templates)", concept="prompt_method", choices=METHODS)
    per_class: int = option(200, help="prompts per class", concept="prompts_per_class")
    prefix: str | None = option(
        None,
        help="domain prefix (default: the data set's, e.g. 'a centered satellite photo of'; '' for none); with "
        "--prompt-method template it replaces the templates by '<prefix> <class><suffix>'",
    )
    suffix: str | None = option(None, help="domain suffix (default: the data set's, e.g. ', a type of bird')")
    prompt_domain: str = option(
        "dataset",
        help="where the prefix and suffix come from when --prefix/--suffix are not given: dataset (each data "
        "set's own) or paper (the official generation script's: EuroSAT's 'a centered satellite photo of', "
        "nothing for the others; joined to the sentence as typed)",
        choices=DOMAINS,
    )
    le_model: str = option(DEFAULT_LE_MODEL, help="seq2seq model id or local directory for Language Enhancement")
    le_labels: str = option(
        "names",
        help="what the model is given for each class: names (the class name) or paper (the official LE.py's "
        "label as typed, an article and the name: 'a Annual Crop Land'; a class list: 'a ' + each name)",
        choices=LABELS,
    )
    smoke: bool = option(False, help="tiny random T5 (no download)", cli=False)
    seed: int = option(0, help="sampling seed; the same seed gives the same file")
    on_missing_class: str = option(
        "repair",
        help="a sentence without the class name: repair (prefix it with the class name), drop, or keep it as "
        "generated (the official code checks nothing)",
        choices=("repair", "drop", "keep"),
    )
    device: str = option("auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    batch_size: int = option(256, help="sequences a generate() call")
    num_return_sequences: int = option(16, help="samples per input row")
    max_rounds: int = option(10, help="sampling rounds before reporting a shortfall")
    top_k: int = option(50, help="top-k sampling")
    top_p: float = option(1.0, help="nucleus sampling")
    temperature: float = option(1.0, help="sampling temperature")
    max_new_tokens: int = option(32, help="longest sentence in tokens")

    def __post_init__(self) -> None:
        if self.per_class < 1:
            raise ValueError(f"--prompts-per-class must be at least 1, got {self.per_class}")
        if self.method not in METHODS:
            raise ValueError(f"--prompt-method must be le or template, got {self.method!r}")
        if self.le_labels not in LABELS or self.prompt_domain not in DOMAINS:
            raise ValueError(f"--le-labels must be one of {LABELS} and --prompt-domain one of {DOMAINS}")

    @property
    def join(self) -> str:
        """How a sentence meets its prefix and suffix (:func:`synthdata.prompts.le.le_prompts`)."""
        return "plain" if self.prompt_domain == "paper" else "tidy"

    def le_inputs(self, classnames: Sequence[str], dataset: str | None = None) -> list[str] | None:
        """What Language Enhancement is given for each class: None (the class names themselves) or, with
        ``le_labels="paper"``, the official labels (:func:`synthdata.prompts.paper_labels`)."""
        if self.le_labels != "paper":
            return None
        from synthdata.prompts.paper import paper_labels

        return paper_labels(classnames, dataset)

    def domain(self, dataset: str | None, prefix: str, suffix: str) -> tuple[str, str]:
        """The generation prompts' prefix and suffix: ``--prefix``/``--suffix`` where given, else the data
        set's (``prefix``, ``suffix``) or, with ``prompt_domain="paper"``, the official script's
        (:func:`synthdata.prompts.paper_domain`; ``dataset`` None: a class list, no prefix)."""
        if self.prompt_domain == "paper":
            from synthdata.prompts.paper import paper_domain

            prefix, suffix = paper_domain(dataset)
        return (prefix if self.prefix is None else self.prefix, suffix if self.suffix is None else self.suffix)

    def le_config(self) -> Any:
        """The sampling settings as :class:`synthdata.prompts.le.LEConfig`."""
        from synthdata.prompts.le import LEConfig

        names = {f.name for f in dataclasses.fields(LEConfig)}
        return LEConfig(**{k: getattr(self, k) for k in names if hasattr(self, k)})
