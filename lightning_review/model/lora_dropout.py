"""LoRA dropout whose mask is drawn again in backward instead of kept.

Why: peft computes ``lora_B(lora_A(dropout(x)))``, so every adapted linear layer keeps its own dropped copy of
``x`` (for lora_A's weight gradient) and a mask: seven per decoder layer, 14.7 x hidden bytes per token of a 13B
layer, about 30% of what a layer keeps once Liger's kernels are in (benchmarks/activation_memory.py). Here dropout
and lora_A are one autograd function that keeps only ``x`` (shared by q/k/v and by gate/up, and kept anyway) and
the random generator's state; backward replays the dropout from that state (the same mask, as checkpointing does)
for lora_A's weight gradient and for the input gradient. Same distribution and scaling as ``torch.nn.Dropout``.

Applied by switching, in one model, each adapted layer's ``lora_A`` to a subclass of ``nn.Linear`` and its dropout
to ``nn.Identity``: peft's forward, adapter files (same keys), merging and export are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _plain(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` in ``dtype``, contiguous and 16-byte aligned: the layout a fresh gradient has, so that dropout's kernel
    takes the same path (and so draws the same mask) on both."""
    x = x.to(dtype).contiguous()
    return x if x.data_ptr() % 16 == 0 else x.clone()


def generator_state(device: torch.device) -> torch.Tensor:
    """The random generator's state of ``device``: what ``replay_dropout`` needs to draw a mask again."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_generator_state(state: torch.Tensor, device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


def draw_dropout(x: torch.Tensor, p: float, dtype: torch.dtype) -> torch.Tensor:
    """torch's dropout of ``x`` in ``dtype`` (the mask drawn from the generator, which moves on as usual)."""
    return F.dropout(_plain(x, dtype), p, training=True)


def replay_dropout(t: torch.Tensor, p: float, dtype: torch.dtype, state: torch.Tensor) -> torch.Tensor:
    """``t`` under the mask ``draw_dropout`` drew from generator ``state`` on a tensor of t's shape: the same mask
    (same state, shape, dtype and a contiguous, aligned layout), the generator itself left untouched."""
    return replay_dropout_and_mask(t, p, dtype, state)[0]


def replay_dropout_and_mask(t: torch.Tensor, p: float, dtype: torch.dtype,
                            state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``replay_dropout`` and its boolean mask, from one draw: torch's ``native_dropout``, which draws what
    ``F.dropout`` draws (its fused kernel on CUDA; the same Bernoulli draw on the CPU, tested)."""
    device = t.device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        _set_generator_state(state, device)
        return torch.native_dropout(_plain(t, dtype), p, True)


class _DropoutLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, p: float) -> torch.Tensor:
        device = x.device
        dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else x.dtype
        ctx.p, ctx.dtype, ctx.rng = p, dtype, generator_state(device)
        ctx.save_for_backward(x, weight)
        with torch.autocast(device.type, enabled=False):  # the mask drawn on x as it comes, as peft's dropout does
            return F.linear(draw_dropout(x, p, x.dtype).to(dtype), weight.to(dtype))

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        dtype, p = ctx.dtype, ctx.p
        grad_out = grad_out.to(dtype)
        grad_in = grad_weight = None
        with torch.autocast(x.device.type, enabled=False):
            if ctx.needs_input_grad[1]:
                dropped = replay_dropout(x, p, x.dtype, ctx.rng).to(dtype)
                grad_weight = (grad_out.reshape(-1, grad_out.shape[-1]).T @ dropped.reshape(-1, x.shape[-1]))
                grad_weight = grad_weight.to(weight.dtype)
                del dropped
            if ctx.needs_input_grad[0]:
                # dropout is linear in its input: the same mask (same generator state, shape and dtype) applied to
                # grad_out @ W is exactly the gradient through it
                grad_in = replay_dropout((grad_out @ weight.to(dtype)).to(x.dtype), p, x.dtype, ctx.rng)
        return grad_in, grad_weight, None


class RegeneratedDropoutLinear(torch.nn.Linear):
    """peft's ``lora_A`` with its dropout inside (``dropout_p``): only ``x`` is kept for backward."""

    dropout_p: float = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.dropout_p == 0.0:
            return super().forward(x)
        return _DropoutLinear.apply(x, self.weight, self.dropout_p)


def use_regenerated_lora_dropout(model: torch.nn.Module) -> int:
    """Fold every peft LoRA dropout of ``model`` into its ``lora_A`` (RegeneratedDropoutLinear); returns how many
    adapters were switched. Layers without dropout, or with a lora_A that is not a plain bias-free Linear, stay."""
    from peft.tuners.lora import LoraLayer

    switched = 0
    for layer in model.modules():
        if not isinstance(layer, LoraLayer):
            continue
        for name, dropout in list(layer.lora_dropout.items()):
            lora_a = layer.lora_A[name] if name in layer.lora_A else None
            if not isinstance(dropout, torch.nn.Dropout) or dropout.p == 0.0 or lora_a is None:
                continue
            if type(lora_a) is not torch.nn.Linear or lora_a.bias is not None:
                continue
            lora_a.__class__ = RegeneratedDropoutLinear
            lora_a.dropout_p = float(dropout.p)
            layer.lora_dropout[name] = torch.nn.Identity()
            switched += 1
    return switched
