"""The files of a Hugging Face checkpoint directory, checked before anything loads them: config.json (a Llama's),
the tokenizer files, and any JSON object file of a model or adapter directory. A missing or corrupt file is named
(CheckpointError) instead of surfacing as transformers' or json's own error without the path."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError, json_error
from .model_sources import model_path

# transformers builds a Llama tokenizer from tokenizer.json (fast) or tokenizer.model (sentencepiece); without
# either it asks to install sentencepiece or tiktoken, which would not help.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
CHECKPOINT_DIR_HINT = ("the base model's directory (fit's model.checkpoint_dir; generate's and perplexity's "
                       "--model_dir or --checkpoint_dir; export's --checkpoint_dir) must be a Hugging Face Llama "
                       "checkpoint directory (config.json, *.safetensors, tokenizer files), e.g. a local copy of "
                       "meta-llama/Llama-2-7b-chat-hf")
TOKENIZER_DIR_HINT = ("point the tokenizer directory (prepare's --tokenizer_dir, fit's model.checkpoint_dir) at the "
                      "model's checkpoint directory, which holds its tokenizer files")

TOKENIZER_JSON_FILES = ("tokenizer.json", "tokenizer_config.json")
TOKENIZER_CORRUPT_HINT = ("copy the tokenizer files again from the model's original directory (a copy cut short or "
                          "edited by hand does not load)")
WEIGHTS_HINT = ("copy the checkpoint's weight files again from the original (a copy cut short, e.g. by a full disk "
                "or an interrupted download, does not load)")


class CheckpointError(UserError):
    """A model directory, training checkpoint or adapter that is missing, corrupt or not what lightning_review
    trains (the message names the file)."""


def read_llama_config(checkpoint_dir: str | Path):
    """The directory's config, after checking it really is a Llama checkpoint."""
    from transformers import AutoConfig

    path = model_path(checkpoint_dir)
    refuse_missing_directory(path, CHECKPOINT_DIR_HINT)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path}: no config.json; {CHECKPOINT_DIR_HINT}")
    model_type = read_json_object(config_file, "config.json", CHECKPOINT_DIR_HINT).get("model_type")
    if model_type != "llama":
        raise CheckpointError(f"{config_file}: model_type is {model_type!r}, but lightning_review trains Llama-"
                              "architecture checkpoints (model_type 'llama'); point model.checkpoint_dir at one")
    return AutoConfig.from_pretrained(path)


def refuse_missing_directory(path: Path, hint: str) -> None:
    """A CheckpointError saying that ``path`` does not exist or is a file, before it is searched for files it would
    not have (which would name a missing config.json or tokenizer file instead of the mistyped path)."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such directory; {hint}")
    if not path.is_dir():
        raise CheckpointError(f"{path}: a file, not a directory; {hint}")


def read_json_object(path: Path, kind: str, hint: str) -> dict:
    """A JSON object file of a model or adapter directory; one that is binary, not JSON or not an object is named
    as corrupt, instead of surfacing as a bare UnicodeDecodeError or JSONDecodeError."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not a valid {kind} (not UTF-8 text: a corrupt or binary file); "
                              f"{hint}") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not a valid {kind} (not JSON: {json_error(exc, line=True)}); "
                              f"{hint}") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: not a valid {kind} (a JSON {type(value).__name__}, not an object); {hint}")
    return value


def check_tokenizer_files(tokenizer_dir: str | Path) -> Path:
    """The tokenizer directory, after checking it has the files transformers builds a Llama tokenizer from."""
    path = model_path(tokenizer_dir)
    refuse_missing_directory(path, TOKENIZER_DIR_HINT)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(
            f"{path}: no tokenizer files (expected tokenizer.json or tokenizer.model, with tokenizer_config.json); "
            f"copy them from the model's original directory into this one, or {TOKENIZER_DIR_HINT}")
    return path


def load_tokenizer(tokenizer_dir: str | Path):
    """The directory's tokenizer (``builtin:`` names resolved); missing tokenizer files are named, not reported
    as a missing sentencepiece package, and corrupt ones are named, not reported as a bare JSON or tokenizers
    error."""
    from transformers import AutoTokenizer

    path = check_tokenizer_files(tokenizer_dir)
    for name in TOKENIZER_JSON_FILES:
        if (path / name).is_file():
            read_json_object(path / name, name, TOKENIZER_CORRUPT_HINT)
    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # tokenizers and sentencepiece raise their own types for a file they cannot parse
        raise CheckpointError(f"{path}: its tokenizer files cannot be loaded ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); {TOKENIZER_CORRUPT_HINT}") from None


def check_weight_files(checkpoint_dir: str | Path) -> Path:
    """The checkpoint directory, after checking that its weights are there and intact: every ``*.safetensors`` file
    (the shards a ``model.safetensors.index.json`` lists, or the files present) has a readable header that covers
    the file (a truncated copy fails here, named, instead of as a bare SafetensorError deep inside
    ``from_pretrained``). Only the headers are read."""
    path = model_path(checkpoint_dir)
    refuse_missing_directory(path, CHECKPOINT_DIR_HINT)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json_object(index, "model.safetensors.index.json", WEIGHTS_HINT).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index}: not a valid model.safetensors.index.json (no 'weight_map' object); "
                                  f"{WEIGHTS_HINT}")
        shards = sorted({path / str(name) for name in weight_map.values()})
        missing = [shard.name for shard in shards if not shard.is_file()]
        if missing:
            raise CheckpointError(f"{index}: lists {len(missing)} weight file(s) that are missing "
                                  f"({', '.join(missing[:3])}); {WEIGHTS_HINT}")
    else:
        shards = sorted(path.glob("*.safetensors"))
        if not shards and not any(path.glob("*.bin")):
            raise CheckpointError(f"{path}: no weights (no *.safetensors or pytorch_model*.bin file); "
                                  f"{WEIGHTS_HINT}")
    for shard in shards:
        check_safetensors(shard, "weights", WEIGHTS_HINT)
    return path


def check_safetensors(file: Path, what: str, hint: str) -> None:
    """A CheckpointError naming ``file`` and ``hint`` where its safetensors header cannot be read or does not cover
    the file (a truncated copy); only the header is read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt"):
            pass
    except SafetensorError as exc:
        raise CheckpointError(f"{file}: corrupt {what}, not a readable safetensors file ({exc}); {hint}") from None
