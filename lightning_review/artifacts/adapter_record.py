"""The adapter record: what a lightning_review adapter directory holds beside peft's files, and the checks that
name a missing or corrupt file before peft reads it.

``lightning_review.json`` records the base model and the RoPE scaling the base must be loaded with; training
(SaveAdapter) and ``export-adapter`` write it, and ``export`` and ``generate`` read it without loading anything
of training.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import UserError
from .checkpoint_files import CheckpointError, check_safetensors, read_json_object, refuse_missing_directory
from .model_limits import MAX_SEQ_LENGTH, ROPE_POSITIONS
from .model_sources import resolve

TRAINING_META = "lightning_review.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_HINT = ("an adapter directory is written by training (SaveAdapter) or by export-adapter; write it again "
                "from the run's checkpoint with `python -m lightning_review export-adapter`")

ADAPTER_DIR_HINT = ("give the adapter directory a lightning_review run wrote (runs/.../adapter) or export-adapter "
                    "wrote")
# what peft needs to rebuild a LoRA adapter; peft raises a bare KeyError without the file for a missing one
ADAPTER_CONFIG_KEYS = ("peft_type", "r", "lora_alpha", "target_modules")


def write_adapter_record(directory: str | Path, checkpoint_dir: str, model_max_length: int | None, config) -> Path:
    """``lightning_review.json`` in an adapter directory: the base model and the RoPE scaling of ``config`` (the
    trained model's config, which already carries the scaling). Returns the file."""
    factor = float((config.rope_parameters or {}).get("factor", 1.0))
    meta = {"checkpoint_dir": str(checkpoint_dir), "model_max_length": model_max_length,
            "rope_parameters": config.rope_parameters, "rope_scaling_factor": factor,
            "max_position_embeddings": config.max_position_embeddings}
    path = Path(directory) / TRAINING_META
    path.write_text(json.dumps(meta, indent=1))
    return path


def read_adapter_meta(adapter_dir: str | Path) -> dict:
    """What ``write_adapter_record`` wrote beside the adapter: the base model directory and the RoPE scaling. Every
    loader reads this first, so the adapter's files are checked here too (``check_adapter_files``)."""
    adapter = resolve(adapter_dir)
    refuse_missing_directory(adapter, ADAPTER_DIR_HINT)
    meta_file = adapter / TRAINING_META
    if not meta_file.is_file():
        refuse_model_directory(adapter)
        raise FileNotFoundError(f"{meta_file}: missing; this needs an adapter written by lightning_review (it records "
                                "the base model and the RoPE scaling to load it with)")
    meta = read_json_object(meta_file, TRAINING_META, ADAPTER_HINT)
    checkpoint_dir = meta.get("checkpoint_dir")
    if not isinstance(checkpoint_dir, str) or not checkpoint_dir.strip():
        raise CheckpointError(f"{meta_file}: not a valid {TRAINING_META} (its 'checkpoint_dir', the base model, is "
                              f"{checkpoint_dir!r}, not a path); {ADAPTER_HINT}")
    length = meta.get("model_max_length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
        raise CheckpointError(f"{meta_file}: not a valid {TRAINING_META} (its 'model_max_length' is {length!r}, not "
                              f"a positive whole number or null); {ADAPTER_HINT}")
    if length is not None and length > MAX_SEQ_LENGTH:  # training never writes one: model.model_max_length is held
        raise CheckpointError(f"{meta_file}: not a valid {TRAINING_META} (its 'model_max_length' is {length}, more "
                              f"than {MAX_SEQ_LENGTH:,} (2**24): {ROPE_POSITIONS}); "
                              f"{ADAPTER_HINT}")
    check_adapter_files(adapter)
    return meta


def refuse_model_directory(directory: Path) -> None:
    """A CheckpointError where an adapter was expected but ``directory`` holds a full model (config.json, no
    adapter_config.json): the flag for a model was the one meant."""
    if (directory / "config.json").is_file() and not (directory / "adapter_config.json").is_file():
        raise CheckpointError(f"{directory}: a model checkpoint directory (config.json, no adapter_config.json), "
                              "not an adapter; give it as --model_dir (a merged export) or --checkpoint_dir (a base "
                              "model), and --adapter_dir only a directory written by training or export-adapter")


def check_adapter_files(adapter_dir: str | Path) -> Path:
    """The adapter directory, after checking that peft will be able to read it: its config is a JSON object and its
    weights file has an intact safetensors header. A corrupt file is named here; peft would raise a bare JSON or
    safetensors error without the path. Only the header is read (a 7B adapter is 4 GB)."""
    adapter = resolve(adapter_dir)
    refuse_missing_directory(adapter, ADAPTER_DIR_HINT)
    config_file = adapter / "adapter_config.json"
    if not config_file.is_file():
        refuse_model_directory(adapter)
        raise FileNotFoundError(f"{config_file}: missing; {ADAPTER_HINT}")
    config = read_json_object(config_file, "adapter_config.json", ADAPTER_HINT)
    missing = [key for key in ADAPTER_CONFIG_KEYS if key not in config]
    if missing:
        raise CheckpointError(f"{config_file}: not a valid adapter_config.json (no {', '.join(map(repr, missing))}: "
                              f"not a peft LoRA config); {ADAPTER_HINT}")
    if config["peft_type"] != "LORA":
        raise CheckpointError(f"{config_file}: peft_type is {config['peft_type']!r}, but lightning_review trains LoRA "
                              f"adapters (peft_type 'LORA'); {ADAPTER_HINT}")
    weights = adapter / ADAPTER_WEIGHTS
    if weights.is_file():
        check_safetensors(weights, "adapter weights", ADAPTER_HINT)
    elif not (adapter / "adapter_model.bin").is_file():
        raise FileNotFoundError(f"{weights}: missing; {ADAPTER_HINT}")
    return adapter


ADAPTER_BASE_FIX = ("give --checkpoint_dir the base the adapter was trained on (or leave it out: lightning_review.json "
                    "records it), and leave adapter_config.json as training wrote it")


def adapter_mismatch(adapter_dir: str | Path, base_dir: str | Path, exc: BaseException,
                     fix: str = ADAPTER_BASE_FIX) -> CheckpointError | None:
    """The CheckpointError for torch's "size mismatch" RuntimeError when an adapter's weights are loaded onto a
    base they were not trained on (another model size, or an adapter_config.json whose ``r`` was changed): the
    adapter, the base and the first mismatch named, with the fix, instead of a screenful of torch's lines. None
    for any other error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip().startswith("size mismatch for ")]
    if not isinstance(exc, RuntimeError) or not lines:
        return None
    return CheckpointError(f"{adapter_dir}: its weights do not fit the base model {base_dir} ({len(lines)} tensors "
                           f"differ in shape, e.g. {lines[0].removeprefix('size mismatch for ').rstrip('.')}); {fix}")


def recorded_base_error(adapter_dir: str | Path, base_dir: str, exc: BaseException) -> CheckpointError:
    """A base model that the adapter's record names but that cannot be loaded (moved, or a relative path from
    another working directory), said as such: the error alone names a path the user never typed."""
    return CheckpointError(f"{Path(adapter_dir) / TRAINING_META} records the base model {base_dir!r}, which cannot "
                           f"be used here ({exc}); if the base moved, give its directory as --checkpoint_dir")


@contextmanager
def adapter_fits(adapter_dir: str | Path, base_dir: str | Path, fix: str = ADAPTER_BASE_FIX) -> Iterator[None]:
    """Around loading an adapter's weights onto a base: torch's size-mismatch RuntimeError becomes
    ``adapter_mismatch``'s one line; any other error passes as it is."""
    try:
        yield
    except RuntimeError as exc:
        error = adapter_mismatch(adapter_dir, base_dir, exc, fix)
        if error is None:
            raise
        raise error from None


@contextmanager
def base_named_by_record(adapter_dir: str | Path, base_dir: str, recorded: bool) -> Iterator[None]:
    """Around loading the base of an adapter: where the base is the one its lightning_review.json records
    (``recorded``: no --checkpoint_dir given), a UserError about it becomes ``recorded_base_error``'s."""
    try:
        yield
    except UserError as exc:
        if not recorded:
            raise
        raise recorded_base_error(adapter_dir, base_dir, exc) from None
