"""The settings of a prompts run (``synth-prompts``, the pipeline's prompts stage) and its named recipes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from synthdata.shards.options import option

#: The paper's keyword-to-text model (T5-base fine-tuned on CommonGen).
DEFAULT_LE_MODEL = "mrm8488/t5-base-finetuned-common_gen"
METHODS = ("le", "template")

#: Named settings over the defaults of :class:`PromptsConfig` (``default``). ``smoke``: a tiny random T5 with
#: a locally built tokenizer (no download; its sentences are random words), short sentences.
RECIPES: dict[str, dict[str, Any]] = {"smoke": {"smoke": True, "max_new_tokens": 12}}


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
    le_model: str = option(DEFAULT_LE_MODEL, help="seq2seq model id or local directory for Language Enhancement")
    smoke: bool = option(False, help="tiny random T5 (no download)", cli=False)
    seed: int = option(0, help="sampling seed; the same seed gives the same file")
    on_missing_class: str = option(
        "repair",
        help="a sentence without the class name: repair (prefix it with the class name) or drop",
        choices=("repair", "drop"),
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

    def le_config(self) -> Any:
        """The sampling settings as :class:`synthdata.prompts.le.LEConfig`."""
        from synthdata.prompts.le import LEConfig

        names = {f.name for f in dataclasses.fields(LEConfig)}
        return LEConfig(**{k: getattr(self, k) for k in names if hasattr(self, k)})
