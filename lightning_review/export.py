"""Exports: a peft adapter from a training checkpoint, and a merged Hugging Face checkpoint from an adapter.

    python -m lightning_review export-adapter --checkpoint runs/.../last.ckpt --output_dir adapter/
    python -m lightning_review export --adapter_dir adapter/ --output_dir merged/

Each output directory is written aside and renamed into place when complete: a failed export leaves no half
directory, an existing non-empty one is replaced only with ``--overwrite true``, and it may never be one of the
inputs, inside one, or hold one.

The merged directory is plain transformers: LoRA folded into the weights, the trained embeddings and norms in place,
and the linear RoPE scaling in its config.json, so ``AutoModelForCausalLM.from_pretrained`` needs no lightning_review.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import torch

from .artifacts.adapter_record import adapter_fits, base_named_by_record, read_adapter_meta
from .artifacts.checkpoint_files import CheckpointError, load_tokenizer, read_llama_config
from .artifacts.deepspeed_files import UnsafeCheckpointError, deepspeed_files_read_safely
from .artifacts.model_limits import MAX_SEQ_LENGTH, ROPE_POSITIONS
from .artifacts.model_sources import looks_like_hub_id, resolve
from .errors import UserError
from .model.loading import add_lora, apply_rope_scaling, load_llama, peft_reading_checkpointing_flag
from .training.module import LongQLoRAModule, module_settings
from .training.resume import load_checkpoint_file


def read_training_checkpoint(checkpoint: str | Path) -> dict:
    """A Lightning checkpoint file, or a DeepSpeed checkpoint directory consolidated to fp32 (Lightning's utility);
    both read with torch's weights-only loader (a directory through deepspeed_files_read_safely, which checks its
    ``latest`` tag first), so neither can run code."""
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint (a .ckpt file, or the directory DeepSpeed writes)")
    if path.is_dir():
        refuse_non_deepspeed_directory(path)
        from lightning.pytorch.utilities.deepspeed import convert_zero_checkpoint_to_fp32_state_dict

        with tempfile.TemporaryDirectory() as tmp, deepspeed_files_read_safely(path):
            try:
                return convert_zero_checkpoint_to_fp32_state_dict(path, Path(tmp) / "consolidated.pt")
            except UnsafeCheckpointError:
                raise
            except Exception as exc:  # DeepSpeed's and torch's many types for a missing or cut-short shard
                detail = str(exc).splitlines()[0] if str(exc) else ""
                raise CheckpointError(f"{path}: a corrupt or incomplete DeepSpeed checkpoint directory (DeepSpeed "
                                      f"cannot consolidate it: {type(exc).__name__}: {detail}); use another "
                                      "checkpoint of the run, or copy this one again whole") from None
    return load_checkpoint_file(path)


def refuse_non_deepspeed_directory(path: Path) -> None:
    """A CheckpointError for a directory given as --checkpoint that is not what DeepSpeed writes (its ``latest``
    file names the tag to consolidate): an adapter or a model directory is named as such."""
    if (path / "latest").is_file():
        return
    if (path / "adapter_config.json").is_file():
        raise CheckpointError(f"{path}: an adapter directory, not a training checkpoint: it needs no export-adapter; "
                              f"merge it with `python -m lightning_review export --adapter_dir {path}`")
    if (path / "config.json").is_file():
        raise CheckpointError(f"{path}: a model checkpoint directory, not a training checkpoint; give --checkpoint "
                              "the run's .ckpt file (checkpoints/last.ckpt) or the directory DeepSpeed wrote")
    raise CheckpointError(f"{path}: not a DeepSpeed checkpoint directory (no 'latest' file in it); give --checkpoint "
                          "the run's .ckpt file (checkpoints/last.ckpt) or the directory DeepSpeed wrote")


def refuse_unloadable_length(checkpoint: str, hparams: dict) -> None:
    """A CheckpointError for a checkpoint whose model_max_length its adapter's record could not hold: the record's
    reader (artifacts.adapter_record.read_adapter_meta) refuses anything but null or a whole number in 1..2**24, so
    the adapter would be written only to fail at every later load. Training holds model.model_max_length to the
    same bound; a checkpoint edited by hand, or from another program, need not be."""
    length = hparams.get("model_max_length")
    if length is None:
        return
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        problem = f"{length!r}, not a positive whole number or null"
    elif length > MAX_SEQ_LENGTH:
        problem = f"{length}, more than {MAX_SEQ_LENGTH:,} (2**24): {ROPE_POSITIONS}"
    else:
        return
    raise CheckpointError(f"{checkpoint}: its hyper_parameters' 'model_max_length' (model.model_max_length) is "
                          f"{problem}; an adapter exported from it could not be loaded; export a checkpoint of a run "
                          f"trained with model.model_max_length at most {MAX_SEQ_LENGTH:,}, or null")


def local_input(source: str | os.PathLike | None) -> Path | None:
    """The local path of an input (``builtin:`` names resolved); None for none or a Hub id."""
    if source is None or looks_like_hub_id(str(source)):
        return None
    return resolve(source) if str(source).startswith("builtin:") else Path(source).expanduser()


def check_output_dir(output_dir: str | os.PathLike, inputs: dict[str, str | os.PathLike | None],
                     overwrite: bool) -> Path:
    """The output directory, refused (UserError) before any work where it cannot hold the export: a file in the
    way, one of the inputs (``{flag: path}``), inside one or holding one (replacing it would delete the input), or
    an existing non-empty directory without ``overwrite``."""
    from .safe_paths import refuse_unwritable_output

    out = Path(output_dir).expanduser()
    refuse_unwritable_output(out, "--output_dir", directory=True)
    target = out.resolve()
    for flag, source in inputs.items():
        path = local_input(source)
        if path is None:
            continue
        path = path.resolve()
        if target == path or path in target.parents or target in path.parents:
            where = "is" if target == path else "is inside" if path in target.parents else "holds"
            raise UserError(f"--output_dir={output_dir} {where} {flag} {source}: writing it would mix the export "
                            f"with its input or delete it; give --output_dir a directory apart from the inputs")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"--output_dir={output_dir} exists and is not empty; give --overwrite true to replace it "
                        "(it is removed only once the new export is complete), or another --output_dir")
    return out


@contextmanager
def written_aside(out: Path):
    """A temporary directory beside ``out``, renamed to ``out`` when the block ends without an error (an existing
    ``out`` is replaced then) and removed when it raises: an export never leaves half a directory."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def lora_skeleton(hparams: dict):
    """The peft model of a run with its base on the meta device: the adapter structure without loading 13B weights."""
    from transformers import AutoModelForCausalLM

    config = read_llama_config(hparams["checkpoint_dir"])
    apply_rope_scaling(config, hparams.get("model_max_length"))
    with torch.device("meta"):
        base = AutoModelForCausalLM.from_config(config)
    return add_lora(base, hparams["lora_r"], hparams["lora_alpha"], hparams["lora_dropout"],
                    hparams["train_embeddings_and_norms"])


def export_adapter(checkpoint: str, output_dir: str, checkpoint_dir: str | None = None,
                   overwrite: bool = False) -> Path:
    """Write the peft adapter (LoRA + embeddings and norms + lightning_review.json) of a training checkpoint.

    Args:
        checkpoint: a Lightning ``.ckpt`` file or a DeepSpeed checkpoint directory of a lightning_review run.
        output_dir: the adapter directory to write.
        checkpoint_dir: the base model directory, when it moved since training (only its config.json is read).
        overwrite: replace an existing non-empty output_dir.
    """
    # Checked twice on purpose: now, before a consolidation that can take minutes, and once the checkpoint has named
    # the base model (when --checkpoint_dir is not given, known only from it), just before writing.
    check_output_dir(output_dir, {"--checkpoint": checkpoint, "--checkpoint_dir": checkpoint_dir}, overwrite)
    ckpt = read_training_checkpoint(checkpoint)
    hparams = module_settings(ckpt.get("hyper_parameters") or {})
    if "lora_r" not in hparams:
        raise CheckpointError(f"{checkpoint}: not a lightning_review training checkpoint (no LongQLoRAModule "
                              "settings)")
    refuse_unloadable_length(checkpoint, hparams)  # before the module's own range check, which names no file
    if checkpoint_dir:
        hparams["checkpoint_dir"] = checkpoint_dir
    out = check_output_dir(output_dir, {"--checkpoint": checkpoint, "the base model": hparams["checkpoint_dir"]},
                           overwrite)
    module = LongQLoRAModule(**hparams)
    module.model = lora_skeleton(hparams)
    state = ckpt["state_dict"]
    expected = set(module.trainable_state_dict())
    missing = sorted(expected - set(state))
    if missing:
        raise CheckpointError(f"{checkpoint}: lacks {len(missing)} trainable weights (e.g. {missing[:3]})")
    with adapter_fits(checkpoint, hparams["checkpoint_dir"], "give --checkpoint_dir the base the run trained on (or "
                      "leave it out: the checkpoint records it)"):
        module.load_state_dict({k: state[k] for k in expected}, strict=False, assign=True)
    with written_aside(out) as tmp:
        module.save_adapter(tmp)
    return out


def export_merged(adapter_dir: str, output_dir: str, checkpoint_dir: str | None = None,
                  dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16", overwrite: bool = False) -> Path:
    """Merge an adapter into its base: a full Hugging Face checkpoint directory (weights, config, tokenizer).

    Args:
        adapter_dir: an adapter written by training (SaveAdapter) or by ``export-adapter``.
        output_dir: the merged checkpoint directory to write.
        checkpoint_dir: the base model directory; default: the one recorded in the adapter's lightning_review.json.
        dtype: the weights' dtype (the base is loaded unquantized in this dtype and LoRA merged into it).
        overwrite: replace an existing non-empty output_dir.
    """
    from peft import PeftModel

    check_output_dir(output_dir, {"--adapter_dir": adapter_dir, "--checkpoint_dir": checkpoint_dir}, overwrite)
    adapter = resolve(adapter_dir)
    meta = read_adapter_meta(adapter)
    base_dir = checkpoint_dir or meta["checkpoint_dir"]
    out = check_output_dir(output_dir, {"--adapter_dir": adapter_dir, "the base model": base_dir}, overwrite)
    torch_dtype = getattr(torch, dtype)
    with base_named_by_record(adapter, base_dir, recorded=not checkpoint_dir):
        tokenizer = load_tokenizer(base_dir)  # before the merge: a directory without tokenizer files fails at once
        base = load_llama(base_dir, quantize=False, model_max_length=meta.get("model_max_length"), dtype=torch_dtype,
                          attn_implementation="sdpa")  # its weight files checked first (check_weight_files)
    with adapter_fits(adapter_dir, base_dir), peft_reading_checkpointing_flag():
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload().to(torch_dtype)
    with written_aside(out) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out
