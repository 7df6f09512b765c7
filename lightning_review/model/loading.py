"""Loading a Hugging Face Llama checkpoint directory for LongQLoRA: 4-bit NF4 weights, linear RoPE interpolation,
LoRA on every linear layer of the decoder, and trainable embeddings and norms (LongLoRA's "+" recipe)."""

from __future__ import annotations

import math
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from ..artifacts.checkpoint_files import check_weight_files, read_llama_config
from ..artifacts.model_sources import model_path
from .hf_attention import ATTENTION_NAME, register

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
EMBEDDINGS_AND_NORMS = ["embed_tokens", "input_layernorm", "post_attention_layernorm", "norm"]


def rope_scaling_factor(model_max_length: int | None, original_context: int) -> float:
    """LongQLoRA's linear position interpolation factor: ceil(target / original), 1 when no extension is asked."""
    if not model_max_length or model_max_length <= original_context:
        return 1.0
    return float(math.ceil(model_max_length / original_context))


def apply_rope_scaling(config, model_max_length: int | None) -> float:
    """Set linear RoPE scaling on ``config`` in place (transformers 5 ``rope_parameters``); returns the factor."""
    original = config.max_position_embeddings
    factor = rope_scaling_factor(model_max_length, original)
    if factor > 1:
        params = dict(config.rope_parameters or {})
        params.update(rope_type="linear", factor=factor)
        config.rope_parameters = params
        config.max_position_embeddings = int(original * factor)
    return factor


def bnb_nf4_config(compute_dtype: torch.dtype = torch.bfloat16):
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def compute_dtype(device: torch.device | str, precision: str | None = None) -> torch.dtype:
    """The dtype the model's weights compute in: the Trainer's precision when there is one ("32-true" is float32,
    "bf16-*" bfloat16, "16-*" float16), else bfloat16 on a GPU and float32 on the CPU. bfloat16 on a CPU is not a
    saving: without bf16 kernels its backward ran 8x its forward on the real 135M model (profiled), so a
    ``precision: 32-true`` CPU run that computed in bfloat16 was both slower and not what it said."""
    if precision is not None:
        precision = str(precision)
        if precision.startswith("bf16"):
            return torch.bfloat16
        if precision.startswith("16"):
            return torch.float16
        if precision.startswith(("32", "64")):
            return torch.float32
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def dtype_name(name: str, device: torch.device | str) -> str:
    """A command's ``--dtype`` with ``auto`` made concrete for ``device`` (bfloat16 on a GPU, float32 on the CPU),
    so what a run records is the dtype it used."""
    return str(compute_dtype(device)).removeprefix("torch.") if name == "auto" else name


def load_llama(checkpoint_dir: str | Path, *, quantize: bool = True, model_max_length: int | None = None,
               device: torch.device | str = "cpu", dtype: torch.dtype = torch.bfloat16,
               attn_implementation: str = ATTENTION_NAME):
    """A Llama causal LM from a checkpoint directory, with 4-bit NF4 base weights when ``quantize``."""
    from transformers import AutoModelForCausalLM

    path = model_path(checkpoint_dir)  # once: a Hub id asks the Hub each time it is resolved
    config = read_llama_config(path)
    check_weight_files(path)  # a truncated or missing weight file named, not a SafetensorError from deep inside
    apply_rope_scaling(config, model_max_length)
    if attn_implementation == ATTENTION_NAME:
        register()
    device = torch.device(device)
    kwargs = {}
    if quantize:
        kwargs["quantization_config"] = bnb_nf4_config(dtype)
    return AutoModelForCausalLM.from_pretrained(
        path, config=config, dtype=dtype, attn_implementation=attn_implementation,
        device_map={"": device}, **kwargs)


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's decoder layers (transformers' checkpointable layers), in order; with or without peft around."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def add_lora(model, r: int = 64, alpha: int = 16, dropout: float = 0.05, train_embeddings_and_norms: bool = True):
    """Wrap with peft LoRA on all decoder linear layers; embeddings and norms as peft ``modules_to_save``, so the
    adapter directory alone restores them with ``PeftModel.from_pretrained``. Trainable weights are kept in fp32."""
    from peft import LoraConfig, get_peft_model

    # Tied input/output embeddings (SmolLM2) stay tied: the trainable embedding copy is the output head too, in
    # training, in the adapter and in the merged export. Without it peft trains a copy the head never sees, and a
    # merged model reloaded by transformers ties the head to that copy: logits that training never produced.
    tied = bool(getattr(model.config, "tie_word_embeddings", False)) and train_embeddings_and_norms
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS, bias="none",
                        task_type="CAUSAL_LM",
                        modules_to_save=EMBEDDINGS_AND_NORMS if train_embeddings_and_norms else None,
                        ensure_weight_tying=tied)
    compute_dtype = model.dtype
    with peft_reading_checkpointing_flag():
        peft_model = get_peft_model(model, config)
    keep_trainable_in_fp32(peft_model, compute_dtype)
    return peft_model


# transformers 5.24's FutureWarning on a read of PreTrainedModel.is_gradient_checkpointing (its start: the rest may
# change); transformers 5.17 has no such warning.
DEPRECATED_CHECKPOINTING_READ = re.escape("`is_gradient_checkpointing` is deprecated")


@contextmanager
def peft_reading_checkpointing_flag() -> Iterator[None]:
    """Around every peft wrap (get_peft_model, PeftModel.from_pretrained): peft 0.21 (the newest) reads
    transformers' ``is_gradient_checkpointing`` in PeftModel's constructor, which transformers 5.24 deprecates for
    ``is_activation_checkpointing`` with a FutureWarning on every wrap that no setting here avoids. That one warning
    (its message and category) is ignored, any other still shows; on transformers 5.17, which has no such warning,
    nothing changes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=DEPRECATED_CHECKPOINTING_READ, category=FutureWarning)
        yield


def keep_trainable_in_fp32(peft_model, dtype: torch.dtype) -> None:
    """fp32 master weights for every trainable parameter, but embeddings' and norms' outputs cast back to the
    model's dtype: otherwise an fp32 norm turns the whole residual stream fp32 (twice the activation memory)."""
    from peft.utils import ModulesToSaveWrapper

    for param in peft_model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()

    def cast(module, args, output):
        return output.to(dtype) if output.is_floating_point() else output

    def to_fp32(module, args):  # a head tied to the fp32 embedding copy multiplies in fp32
        return tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)

    for module in peft_model.modules():
        if isinstance(module, ModulesToSaveWrapper):
            module.register_forward_hook(cast)
            if isinstance(module.original_module, torch.nn.Linear):
                module.register_forward_pre_hook(to_fp32)
