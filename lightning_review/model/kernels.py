"""Liger's Triton kernels for Llama's RMSNorm and SwiGLU, swapped into one model instance.

Why: transformers' eager RMSNorm runs about ten elementwise kernels in fp32 and keeps two fp32 copies of the
residual stream per norm for backward; its MLP keeps gate, silu(gate) and up. Liger's RMSNorm keeps its input and
one fp32 scalar per token, its SwiGLU keeps gate and up and recomputes silu in backward: one kernel each way and
about a fifth less activation memory per decoder layer (benchmarks/activation_memory.py), which is what lets more
layers skip gradient checkpointing (``checkpointed_layers``).

Why not ``liger_kernel.transformers.apply_liger_kernel_to_llama``: it also replaces transformers' classes and RoPE
function for the whole process, so a baseline model built later in the same process (benchmarks/train_step.py)
would silently use them too. Here the class of each module of this one model is switched to a subclass: weights,
state-dict keys and peft's trainable copies of the norms stay as they are.
"""

from __future__ import annotations

import functools
from typing import Literal

import torch

Kernels = Literal["auto", "liger", "none"]


def liger_available() -> bool:
    """Whether liger-kernel (and the Triton it needs) can be imported here."""
    try:
        import liger_kernel.ops.rms_norm  # noqa: F401
        import liger_kernel.ops.swiglu  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_kernels(kernels: Kernels, device: torch.device) -> str:
    """``auto``: Liger on CUDA when installed, transformers' modules otherwise; ``liger`` insists on it."""
    if kernels not in ("auto", "liger", "none"):
        raise ValueError(f"model.kernels must be 'auto', 'liger' or 'none', got {kernels!r}")
    if kernels == "none":
        return "none"
    usable = device.type == "cuda" and liger_available()
    if kernels == "liger" and not usable:
        why = "it runs on CUDA only" if device.type != "cuda" else "liger-kernel is not installed"
        raise RuntimeError(f"model.kernels=liger: {why} (device {device}); `pip install liger-kernel` on a CUDA "
                           "machine, or set model.kernels to auto or none")
    return "liger" if usable else "none"


@functools.cache
def _liger_classes() -> dict[type, tuple[str, type]]:
    """transformers' Llama module class -> (its kind, its Liger subclass); made once, on first use, so that
    transformers and Liger are imported only when the kernels are asked for."""
    from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm

    class LigerLlamaRMSNorm(LlamaRMSNorm):
        """transformers' Llama RMSNorm (its casting: inverse RMS in fp32, product in the input's dtype) in one
        Liger kernel; the output keeps the input's dtype, also when the weight is trainable fp32."""

        def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
            from liger_kernel.ops.rms_norm import LigerRMSNormFunction

            # in_place=False: Liger's in-place backward overwrites the incoming gradient, which the residual
            # connection around every Llama norm still needs.
            return LigerRMSNormFunction.apply(hidden_states, self.weight, self.variance_epsilon, 0.0, "llama", False)

    class LigerLlamaMLP(LlamaMLP):
        """down(silu(gate(x)) * up(x)) with the activation and product in one Liger kernel (LoRA stays in the
        projections, which are called as before)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            from liger_kernel.ops.swiglu import LigerSiLUMulFunction

            return self.down_proj(LigerSiLUMulFunction.apply(self.gate_proj(x), self.up_proj(x)))

    return {LlamaRMSNorm: ("rms_norm", LigerLlamaRMSNorm), LlamaMLP: ("mlp", LigerLlamaMLP)}


def use_liger_kernels(model: torch.nn.Module) -> dict[str, int]:
    """Switch every Llama RMSNorm (peft's trainable copies included) and every SiLU MLP of ``model`` to Liger's
    kernels; returns how many modules of each kind were switched. Call it after peft has wrapped the model."""
    counts = {"rms_norm": 0, "mlp": 0}
    for module in model.modules():
        swap = _liger_classes().get(type(module))
        if swap is None:
            continue
        kind, fused = swap
        if kind == "mlp" and module.config.hidden_act != "silu":
            raise ValueError(f"Liger's SwiGLU kernel computes silu, but this model's hidden_act is "
                             f"{module.config.hidden_act!r}; set model.kernels to none")
        module.__class__ = fused
        counts[kind] += 1
    return counts
