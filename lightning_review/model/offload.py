"""Gradient checkpointing whose saved layer inputs live in host memory: at 32K tokens a 13B decoder keeps 40 x 32K x
5,120 bf16 layer inputs, 13.4 GB of GPU memory; offloaded, they cost a copy to pinned host memory in forward and one
back before the layer is recomputed in backward.

Why written here: torch's non-reentrant checkpoint keeps its inputs referenced on the GPU (saved-tensor hooks such as
``torch.autograd.graph.save_on_cpu`` do not reach them), and torch's ``offload_wrapper`` offloads every activation of
a layer instead of recomputing it (gigabytes per layer over PCIe). This is the reentrant checkpoint (forward without
grad, replay in backward with the RNG and autocast state of the forward) with its one saved tensor on the host
(HostCopy: exact-size pinned pieces).
Gradients of the layer's parameters accumulate during the replay, as with reentrant checkpointing: single-GPU and
DeepSpeed ZeRO runs; not for DDP without ``static_graph``.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import UserError


MIN_CHUNK_ELEMENTS = 1 << 20


def power_of_two_chunks(numel: int, smallest: int = MIN_CHUNK_ELEMENTS) -> list[int]:
    """``numel`` as a sum of powers of two (largest first), the last piece below ``smallest`` left as it is."""
    chunks, rest = [], numel
    while rest >= smallest:
        chunk = 1 << (rest.bit_length() - 1)
        chunks.append(chunk)
        rest -= chunk
    return chunks + ([rest] if rest else [])


class HostCopy:
    """A device tensor's copy in pinned host memory, held as power-of-two pieces.

    Why pieces: torch's caching host allocator rounds every pinned block up to a power of two and keeps freed blocks
    for reuse, so one block per layer input of a 13B at 256K tokens (2.7 GB) would pin 4 GB: 160 GB for 40 layers,
    more than the host has. Pieces of exactly a power of two are pinned at their size (plus at most 2 MB of rounding
    for the last one) and are reused from the allocator's cache by the next step's copies of the same length.
    On a CPU device the pieces are ordinary memory.
    """

    def __init__(self, tensor: torch.Tensor):
        pinned = tensor.device.type == "cuda"
        self.shape, self.dtype = tensor.shape, tensor.dtype
        flat = tensor.reshape(-1)
        self.pieces, start = [], 0
        for size in power_of_two_chunks(flat.numel()):
            piece = torch.empty(size, dtype=tensor.dtype, pin_memory=pinned)
            piece.copy_(flat[start:start + size], non_blocking=pinned)  # ordered on the stream before any reuse
            self.pieces.append(piece)
            start += size

    @property
    def nbytes(self) -> int:
        return sum(piece.untyped_storage().nbytes() for piece in self.pieces)

    def to(self, device: torch.device) -> torch.Tensor:
        out = torch.empty(sum(piece.numel() for piece in self.pieces), dtype=self.dtype, device=device)
        start = 0
        for piece in self.pieces:
            out[start:start + piece.numel()].copy_(piece, non_blocking=True)
            start += piece.numel()
        return out.view(self.shape)


class _HostCheckpoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run: Callable, hidden: torch.Tensor) -> torch.Tensor:
        device = hidden.device
        ctx.run, ctx.device = run, device
        ctx.autocast = {"enabled": torch.is_autocast_enabled(device.type),
                        "dtype": torch.get_autocast_dtype(device.type)}
        ctx.cpu_rng = torch.get_rng_state()
        ctx.device_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        ctx.host = HostCopy(hidden.detach())
        with torch.no_grad():
            out = run(hidden)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"activation offload expects a decoder layer that returns a tensor, got {type(out)}")
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        hidden = ctx.host.to(ctx.device).requires_grad_(True)
        ctx.host = None
        devices = [ctx.device] if ctx.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(ctx.cpu_rng)
            if ctx.device_rng is not None:
                torch.cuda.set_rng_state(ctx.device_rng, ctx.device)
            with torch.enable_grad(), torch.autocast(ctx.device.type, **ctx.autocast):
                out = ctx.run(hidden)
        torch.autograd.backward(out, grad_out)
        return None, hidden.grad


def host_checkpoint(function: Callable, hidden: torch.Tensor, *args) -> torch.Tensor:
    """Drop-in for transformers' ``_gradient_checkpointing_func(partial(layer.forward, **kwargs), hidden_states)``."""
    if args:
        raise TypeError("activation offload checkpoints decoder layers called with hidden_states as the only "
                        "positional argument (transformers' Llama)")
    return _HostCheckpoint.apply(function, hidden)


def enable_activation_offload(model: torch.nn.Module) -> int:
    """Use ``host_checkpoint`` in every checkpointed decoder layer of ``model`` (gradient checkpointing must be on);
    returns the number of layers switched."""
    from .loading import decoder_layers

    layers = [layer for layer in decoder_layers(model) if layer.gradient_checkpointing]
    if not layers:
        raise UserError("activation_offload needs gradient_checkpointing: it offloads the checkpointed layer inputs")
    for layer in layers:
        layer._gradient_checkpointing_func = host_checkpoint
    return len(layers)
