"""Liger's Triton kernels for Llama's RMSNorm, SwiGLU and RoPE, swapped into one model instance.

Why: transformers' eager RMSNorm runs about ten elementwise kernels in fp32 and keeps two fp32 copies of the
residual stream per norm for backward; its MLP keeps gate, silu(gate) and up. Liger's RMSNorm keeps its input and
one fp32 scalar per token, its SwiGLU keeps gate and up and recomputes silu in backward: one kernel each way and
about a fifth less activation memory per decoder layer (benchmarks/activation_memory.py), which is what lets more
layers skip gradient checkpointing (``checkpointed_layers``). transformers' RoPE (rotate-half: slices, a cat, a
negation, four products) costs 2.1 ms per 13B layer at 8K tokens forward and backward, Liger's one kernel 0.76 ms
(benchmarks/lever_costs.py); in training, 1.09x tokens/s at 8K and 16K (benchmarks/RESULTS.md).

Why not ``liger_kernel.transformers.apply_liger_kernel_to_llama``: it also replaces transformers' classes and RoPE
function for the whole process, so a baseline model built later in the same process (benchmarks/train_step.py)
would silently use them too. Here the class of each module of this one model is switched to a subclass: weights,
state-dict keys and peft's trainable copies of the norms stay as they are.
"""

from __future__ import annotations

import functools
import importlib
import types
from typing import Callable, Literal

import torch

from ..errors import UserError

Kernels = Literal["auto", "liger", "none"]
LIGER_MODULES = ("liger_kernel.ops.rms_norm", "liger_kernel.ops.swiglu", "liger_kernel.transformers.rope")


def liger_available() -> bool:
    """Whether liger-kernel (and the Triton it needs) can be imported here."""
    try:
        for name in LIGER_MODULES:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def resolve_kernels(kernels: Kernels, device: torch.device) -> str:
    """``auto``: Liger on CUDA when installed, transformers' modules otherwise; ``liger`` insists on it."""
    if kernels not in ("auto", "liger", "none"):
        raise UserError(f"model.kernels must be 'auto', 'liger' or 'none', got {kernels!r}")
    if kernels == "none":
        return "none"
    usable = device.type == "cuda" and liger_available()
    if kernels == "liger" and not usable:
        why = "it runs on CUDA only" if device.type != "cuda" else "liger-kernel is not installed"
        raise RuntimeError(f"model.kernels=liger: {why} (device {device}); `pip install liger-kernel` on a CUDA "
                           "machine, or set model.kernels to auto or none")
    return "liger" if usable else "none"


def with_globals(function: Callable, **replacements) -> Callable:
    """A copy of ``function`` whose global names in ``replacements`` mean something else; decorators made with
    functools.wraps (``__wrapped__``) are copied around the new function.

    Why: transformers' LlamaAttention.forward calls its module's global ``apply_rotary_pos_emb``. A subclass whose
    forward is this copy uses Liger's RoPE for the modules switched to it, and only those, with transformers' own
    forward (whatever its version) instead of a hand-copied one. The copy sees the module's globals as they were
    when it was made (a snapshot, with the replacements).
    """
    inner = getattr(function, "__wrapped__", None)
    if inner is None:
        copy = types.FunctionType(function.__code__, {**function.__globals__, **replacements}, function.__name__,
                                  function.__defaults__, function.__closure__)
    else:
        new_inner = with_globals(inner, **replacements)
        cells = function.__closure__ or ()
        if not any(_holds(cell, inner) for cell in cells):
            raise TypeError(f"{function.__qualname__}: its decorator does not hold the wrapped function in a closure")
        closure = tuple(types.CellType(new_inner) if _holds(cell, inner) else cell for cell in cells)
        copy = types.FunctionType(function.__code__, function.__globals__, function.__name__, function.__defaults__,
                                  closure)
        copy.__wrapped__ = new_inner
    copy.__kwdefaults__, copy.__qualname__, copy.__doc__ = (function.__kwdefaults__, function.__qualname__,
                                                            function.__doc__)
    return copy


def _holds(cell: types.CellType, value: object) -> bool:
    try:
        return cell.cell_contents is value
    except ValueError:  # an empty cell
        return False


@functools.cache
def _liger_classes() -> dict[type, tuple[str, type]]:
    """transformers' Llama module class -> (its kind, its Liger subclass); made once, on first use, so that
    transformers and Liger are imported only when the kernels are asked for."""
    from liger_kernel.transformers.rope import liger_rotary_pos_emb
    from transformers.models.llama.modeling_llama import LlamaAttention, LlamaMLP, LlamaRMSNorm

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

    class LigerLlamaAttention(LlamaAttention):
        """transformers' Llama attention with q and k rotated by Liger's RoPE kernel (one kernel each way)."""

        forward = with_globals(LlamaAttention.forward, apply_rotary_pos_emb=liger_rotary_pos_emb)

    return {LlamaRMSNorm: ("rms_norm", LigerLlamaRMSNorm), LlamaMLP: ("mlp", LigerLlamaMLP),
            LlamaAttention: ("rope", LigerLlamaAttention)}


def use_liger_kernels(model: torch.nn.Module) -> dict[str, int]:
    """Switch every Llama RMSNorm (peft's trainable copies included), every SiLU MLP and every attention module's
    RoPE of ``model`` to Liger's kernels; returns how many modules of each kind were switched. Call it after peft
    has wrapped the model."""
    counts = {"rms_norm": 0, "mlp": 0, "rope": 0}
    classes = _liger_classes()
    for module in model.modules():
        swap = classes.get(type(module))
        if swap is None:
            continue
        kind, fused = swap
        if kind == "mlp" and module.config.hidden_act != "silu":
            raise UserError(f"Liger's SwiGLU kernel computes silu, but this model's hidden_act is "
                             f"{module.config.hidden_act!r}; set model.kernels to none")
        module.__class__ = fused
        counts[kind] += 1
    return counts
