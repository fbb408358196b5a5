"""The one flag vocabulary of every ``synth-*`` command: a concept, its flag, and its generic help.

Options are added by concept (a config field's ``concept`` metadata, else its name), so the same concept gets
the same flag in every command by construction. Only ``synth-pipeline``, which configures several stages at
once, may put a stage prefix before a flag that would otherwise mean two things there (``--gen-batch-size``,
``--tune-batch-size``); those are concepts of their own below. ``docs/cli.md`` lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Flag:
    """How a concept is spelled on the command line, with a help text for options no config field backs."""

    flag: str
    help: str = ""
    metavar: str | None = None


def _f(flag: str, help: str = "", metavar: str | None = None) -> Flag:
    return Flag(flag, help, metavar)


VOCABULARY: dict[str, Flag] = {
    # --- run control, in every command
    "config": _f("--config", "read options from a TOML, YAML or JSON file (flags given here override it)", "FILE"),
    "recipe": _f("--recipe", "named settings to start from (flags and --config override them)", "NAME"),
    "smoke": _f("--smoke", "tiny random models of the real architectures, for checks and CI (--recipe smoke)"),
    "verbose": _f("-v", "debug logging"),
    "quiet": _f("--quiet", "no progress bars or tables; only the result line and errors"),
    "fresh": _f("--fresh", "ignore the progress an earlier run left in --out and start over"),
    "device": _f("--device", "auto (CUDA when available, else the CPU), cpu, cuda or cuda:N", "DEVICE"),
    "precision": _f("--precision", "auto, fp32, fp16 or bf16"),
    "seed": _f("--seed", "global seed"),
    "workers": _f("--workers", "data-loading processes", "N"),
    "batch_size": _f("--batch-size", "items a batch", "N"),
    "weights_cache": _f(
        "--weights-cache", "where downloaded model weights are cached (default: each library's own cache)", "DIR"
    ),
    "download": _f("--no-download", "fail instead of downloading missing model weights"),
    # --- data in and out
    "out": _f("--out", "output directory", "DIR"),
    "src": _f("--in", "input shard directory", "DIR"),
    "prompts_file": _f("--prompts", "prompts JSONL file (from synth-prompts)", "FILE"),
    "train": _f("--train", "training data", "DIR"),
    "eval": _f("--eval", "real test data: an ImageFolder (one sub-folder per class) or a shard directory", "DIR"),
    "few_shot": _f("--few-shot", "real few-shot images: an ImageFolder (one sub-folder per class) or shards", "DIR"),
    "shots": _f("--shots", "real images per class drawn from --few-shot", "K"),
    "data": _f("--data", "shard directory (with dataset.json) or shard URL pattern", "SHARDS"),
    "dataset": _f("--dataset", "a built-in data set: its class names, templates and prompt prefix", "NAME"),
    "classes_file": _f("--classes", "a class list file: .txt (one a line), .json or .csv", "FILE"),
    "classes_from_shards": _f("--classes-from-shards", "class names from the input's dataset.json"),
    "templates_file": _f("--templates", "CLIP templates file, one '{}' template a line", "FILE"),
    "num_classes": _f("--num-classes", "number of classes", "N"),
    "shard_size": _f("--shard-size", "samples per shard", "N"),
    "image_format": _f("--format", "image format: png, jpg or webp"),
    "quality": _f("--quality", "jpg/webp quality 1-100", "Q"),
    "name": _f("--name", "data set name written to dataset.json"),
    "json": _f("--json", "print JSON instead of a table"),
    "list_datasets": _f("--list-datasets", "print the built-in data sets and exit"),
    "decode": _f("--no-decode", "skip decoding images"),
    "as_imagefolder": _f("--as-imagefolder", "write image folders instead of shards"),
    "imagefolder_out": _f("--imagefolder", "output ImageFolder", "OUT"),
    # --- how many
    "images_per_class": _f("--images-per-class", "images made per class", "N"),
    "images_per_prompt": _f("--images-per-prompt", "images made per prompt", "N"),
    "prompts_per_class": _f("--prompts-per-class", "prompts written per class", "N"),
    "keep_per_class": _f("--keep-per-class", "images kept per class by the filter", "N"),
    "eval_per_class": _f("--eval-per-class", "test images per class", "N"),
    # --- prompts
    "prompt_method": _f("--prompt-method", "how prompts are written: le, template or basic"),
    "prefix": _f("--prefix", "domain prefix of the prompts (default: the data set's; '' for none)", "TEXT"),
    "suffix": _f("--suffix", "domain suffix of the prompts (default: the data set's)", "TEXT"),
    "le_model": _f("--le-model", "Language Enhancement model: a seq2seq model id or local directory", "ID"),
    # --- generation
    "size": _f("--size", "image size in pixels"),
    "guidance": _f("--guidance", "classifier-free guidance scale"),
    "base_respacing": _f("--base-respacing", "base sampler steps", "STEPS"),
    "up_respacing": _f("--up-respacing", "upsampler DDIM steps", "STEPS"),
    "upsample_temp": _f("--upsample-temp", "upsampler noise temperature"),
    "sampler": _f("--sampler", "exact, fast (fixed batch, fused kernels, CUDA graphs) or auto"),
    "base_checkpoint": _f("--base-checkpoint", "GLIDE base model: a file or a release name", "FILE"),
    "upsample_checkpoint": _f("--upsample-checkpoint", "GLIDE upsampler: a file or a release name", "FILE"),
    "gen_batch_size": _f("--gen-batch-size", "images a generation batch", "N"),
    "nproc_per_node": _f("--nproc-per-node", "run generation on N local GPUs (torchrun)", "N"),
    # --- CLIP, filter and tune
    "clip_model": _f("--clip-model", "open_clip architecture", "ARCH"),
    "clip_pretrained": _f("--clip-pretrained", "open_clip weights tag or file; 'none' for random", "TAG"),
    "filter_rule": _f("--filter-rule", "selection rule"),
    "threshold": _f("--threshold", "confidence threshold"),
    "report": _f("--no-report", "skip the PNG report"),
    "feature_cache": _f("--feature-cache", "feature cache directory (shareable between runs)", "DIR"),
    "use_cache": _f("--no-cache", "compute features without reading or writing a cache"),
    "epochs": _f("--epochs", "training epochs", "N"),
    "lr": _f("--lr", "peak learning rate"),
    "weight_decay": _f("--weight-decay", "weight decay"),
    "warmup_epochs": _f("--warmup-epochs", "linear warmup in epochs before the cosine decay", "EPOCHS"),
    "grad_clip": _f("--grad-clip", "gradient-norm clip (0 or unset: off)"),
    "label_smoothing": _f("--label-smoothing", "label smoothing"),
    "tune_batch_size": _f("--tune-batch-size", "synthetic images a tuning step", "N"),
    "finetune": _f("--finetune", "train the image encoder end to end too"),
    # --- pre-training (timm's names where timm has one)
    "model": _f("--model", "timm model name"),
    "img_size": _f("--img-size", "model input size in pixels"),
    "auto_augment": _f("--aa", "timm auto-augment policy"),
    "checkpoint": _f("--checkpoint", "a pre-training checkpoint (RUN/checkpoints/last.pt)", "FILE"),
    # --- pipeline control
    "redo": _f("--redo", "redo STAGE and every stage after it even if finished; repeatable", "STAGE"),
    "until": _f("--until", "stop after STAGE", "STAGE"),
    "dry_run": _f("--dry-run", "print the plan (stages, images, shards, estimated GPU time) and exit"),
}


def flag_of(concept: str) -> str:
    """The flag of ``concept``; a concept missing here is a programming error, caught by the tests."""
    try:
        return VOCABULARY[concept].flag
    except KeyError:
        return "--" + concept.replace("_", "-")
