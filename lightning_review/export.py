"""Exports: a peft adapter from a training checkpoint, and a merged Hugging Face checkpoint from an adapter.

    python -m lightning_review export-adapter --checkpoint runs/.../last.ckpt --output_dir adapter/
    python -m lightning_review export --adapter_dir adapter/ --output_dir merged/

The merged directory is plain transformers: LoRA folded into the weights, the trained embeddings and norms in place,
and the linear RoPE scaling in its config.json, so ``AutoModelForCausalLM.from_pretrained`` needs no lightning_review.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import torch

from .artifacts.adapter_record import read_adapter_meta
from .artifacts.checkpoint_files import CheckpointError, load_tokenizer, read_llama_config
from .artifacts.model_sources import resolve
from .model.loading import add_lora, apply_rope_scaling, load_llama
from .training.module import LongQLoRAModule, module_settings
from .training.resume import load_checkpoint_file


def read_training_checkpoint(checkpoint: str | Path) -> dict:
    """A Lightning checkpoint file, or a DeepSpeed checkpoint directory consolidated to fp32 (Lightning's utility)."""
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint (a .ckpt file, or the directory DeepSpeed writes)")
    if path.is_dir():
        from lightning.pytorch.utilities.deepspeed import convert_zero_checkpoint_to_fp32_state_dict

        with tempfile.TemporaryDirectory() as tmp:
            return convert_zero_checkpoint_to_fp32_state_dict(path, Path(tmp) / "consolidated.pt")
    return load_checkpoint_file(path)


def lora_skeleton(hparams: dict):
    """The peft model of a run with its base on the meta device: the adapter structure without loading 13B weights."""
    from transformers import AutoModelForCausalLM

    config = read_llama_config(hparams["checkpoint_dir"])
    apply_rope_scaling(config, hparams.get("model_max_length"))
    with torch.device("meta"):
        base = AutoModelForCausalLM.from_config(config)
    return add_lora(base, hparams["lora_r"], hparams["lora_alpha"], hparams["lora_dropout"],
                    hparams["train_embeddings_and_norms"])


def export_adapter(checkpoint: str, output_dir: str, checkpoint_dir: str | None = None) -> Path:
    """Write the peft adapter (LoRA + embeddings and norms + lightning_review.json) of a training checkpoint.

    Args:
        checkpoint: a Lightning ``.ckpt`` file or a DeepSpeed checkpoint directory of a lightning_review run.
        output_dir: the adapter directory to write.
        checkpoint_dir: the base model directory, when it moved since training (only its config.json is read).
    """
    ckpt = read_training_checkpoint(checkpoint)
    hparams = module_settings(ckpt.get("hyper_parameters") or {})
    if "lora_r" not in hparams:
        raise CheckpointError(f"{checkpoint}: not a lightning_review training checkpoint (no LongQLoRAModule "
                              "settings)")
    if checkpoint_dir:
        hparams["checkpoint_dir"] = checkpoint_dir
    module = LongQLoRAModule(**hparams)
    module.model = lora_skeleton(hparams)
    state = ckpt["state_dict"]
    expected = set(module.trainable_state_dict())
    missing = sorted(expected - set(state))
    if missing:
        raise CheckpointError(f"{checkpoint}: lacks {len(missing)} trainable weights (e.g. {missing[:3]})")
    module.load_state_dict({k: state[k] for k in expected}, strict=False, assign=True)
    return module.save_adapter(output_dir)


def export_merged(adapter_dir: str, output_dir: str, checkpoint_dir: str | None = None,
                  dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16") -> Path:
    """Merge an adapter into its base: a full Hugging Face checkpoint directory (weights, config, tokenizer).

    Args:
        adapter_dir: an adapter written by training (SaveAdapter) or by ``export-adapter``.
        output_dir: the merged checkpoint directory to write.
        checkpoint_dir: the base model directory; default: the one recorded in the adapter's lightning_review.json.
        dtype: the weights' dtype (the base is loaded unquantized in this dtype and LoRA merged into it).
    """
    from peft import PeftModel

    adapter = resolve(adapter_dir)
    meta = read_adapter_meta(adapter)
    base_dir = checkpoint_dir or meta["checkpoint_dir"]
    tokenizer = load_tokenizer(base_dir)  # before the merge: a directory without tokenizer files fails at once
    torch_dtype = getattr(torch, dtype)
    base = load_llama(base_dir, quantize=False, model_max_length=meta.get("model_max_length"), dtype=torch_dtype,
                      attn_implementation="sdpa")
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload().to(torch_dtype)
    out = Path(output_dir)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
