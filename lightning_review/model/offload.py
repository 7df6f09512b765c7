"""Gradient checkpointing whose saved layer inputs live in host memory: at 32K tokens a 13B decoder keeps 40 x 32K x
5,120 bf16 layer inputs, 13.4 GB of GPU memory; offloaded, they cost a copy to pinned host memory in forward and one
back before the layer is recomputed in backward. Both run on a side stream beside the compute: the copy back of a
layer's input starts when backward reaches the layer after it (HostCopy.take). On the compute stream the copies had
cost their whole time: with 3 more layers unrecomputed in the memory they freed, a 13B mix step ran 4,797 against
5,169 tokens/s without offload (benchmarks/RESULTS.md, session 7). On the side stream (session 16, one H200, with
``checkpointed_layers=fit`` spending the freed memory within the baseline's peak + 5%): 13B 16K 37 of 40 layers
checkpointed, 6,806 against 6,793 tokens/s with all 40 and no offload (+0.2%, inside the spread; 6.7 GB pinned);
13B 32K 36 of 40, 6,454 against 6,393 (+0.9%; 20.1 GB pinned); 7B 32K 28 of 32, 11,428 against 11,307 (+1.1%;
8.6 GB pinned). It pays little: each layer left unrecomputed costs the memory of all its activations, about eleven
layer inputs' worth (1.9 GB a 13B layer at 16K, inputs of 168 MB), so the inputs it moves to the host buy few
layers. Off by default.

Why written here: torch's non-reentrant checkpoint keeps its inputs referenced on the GPU (saved-tensor hooks such as
``torch.autograd.graph.save_on_cpu`` do not reach them), and torch's ``offload_wrapper`` offloads every activation of
a layer instead of recomputing it (gigabytes per layer over PCIe). This is the reentrant checkpoint (forward without
grad, replay in backward with the RNG and autocast state of the forward) with its one saved tensor on the host
(HostCopy: exact-size pinned pieces).
Gradients of the layer's parameters accumulate during the replay, as with reentrant checkpointing: single-GPU and
DeepSpeed ZeRO runs; not for DDP without ``static_graph``.
"""

from __future__ import annotations

import weakref
from contextlib import nullcontext
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


_COPY_STREAMS: dict[int, torch.cuda.Stream] = {}


def _copy_stream(device: torch.device) -> torch.cuda.Stream:
    """One side stream per GPU for the host copies, so that they run beside the layers' compute: on the compute
    stream they cost their whole time (at 16K tokens a 13B layer input is 168 MB, an estimated 3 ms each way at
    55 GB/s: 0.27 s of a 2.4 s step for 40 layers)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _COPY_STREAMS:
        _COPY_STREAMS[index] = torch.cuda.Stream(device=index)
    return _COPY_STREAMS[index]


class HostCopy:
    """A device tensor's copy in pinned host memory, held as power-of-two pieces.

    Why pieces: torch's caching host allocator rounds every pinned block up to a power of two and keeps freed blocks
    for reuse, so one block per layer input of a 13B at 256K tokens (2.7 GB) would pin 4 GB: 160 GB for 40 layers,
    more than the host has. Pieces of exactly a power of two are pinned at their size (plus at most 2 MB of rounding
    for the last one) and are reused from the allocator's cache by the next step's copies of the same length.
    On CUDA the copies run on a side stream (_copy_stream): the tensor must not be written in place until the copy
    is done (a decoder layer's input is not); its memory is not reused before (``record_stream``).
    ``previous``: the copy made just before this one, whose copy back ``take`` starts early (``prefetch``): backward
    meets the layers in reverse order. On a CPU device the pieces are ordinary memory and the copies plain.
    """

    def __init__(self, tensor: torch.Tensor, previous: HostCopy | None = None):
        self.device = tensor.device
        self.pinned = pinned = tensor.device.type == "cuda"
        self.shape, self.dtype = tensor.shape, tensor.dtype
        self.previous = weakref.ref(previous) if previous is not None else None
        self._back: tuple[torch.Tensor, torch.cuda.Event | None] | None = None
        flat = tensor.reshape(-1)  # before the wait: a non-contiguous tensor's copy is made on the compute stream
        stream = _copy_stream(tensor.device) if pinned else None
        if stream is not None:
            stream.wait_stream(torch.cuda.current_stream(tensor.device))  # the tensor is computed
        self.pieces, start = [], 0
        with torch.cuda.stream(stream) if stream is not None else nullcontext():
            for size in power_of_two_chunks(flat.numel()):
                piece = torch.empty(size, dtype=tensor.dtype, pin_memory=pinned)
                piece.copy_(flat[start:start + size], non_blocking=pinned)
                self.pieces.append(piece)
                start += size
        if stream is not None:
            flat.record_stream(stream)  # the tensor's memory (or its flat copy's) is not reused before the copy ran

    @property
    def nbytes(self) -> int:
        return sum(piece.untyped_storage().nbytes() for piece in self.pieces)

    def _empty(self, device: torch.device) -> torch.Tensor:
        return torch.empty(sum(piece.numel() for piece in self.pieces), dtype=self.dtype, device=device)

    def _copy_into(self, out: torch.Tensor) -> torch.Tensor:
        start = 0
        for piece in self.pieces:
            out[start:start + piece.numel()].copy_(piece, non_blocking=self.pinned)
            start += piece.numel()
        return out.view(self.shape)

    def _copy_back(self, device: torch.device) -> torch.Tensor:
        return self._copy_into(self._empty(device))

    def to(self, device: torch.device) -> torch.Tensor:
        """A copy back on ``device``, ordered on its current stream after the copy to the host."""
        if self.pinned:
            torch.cuda.current_stream(device).wait_stream(_copy_stream(self.device))
        return self._copy_back(device)

    def prefetch(self) -> None:
        """Start the copy back to the tensor's device now, on the copy stream (no-op once started or taken). The
        buffer is allocated on the compute stream, whose pool it returns to (one made on the copy stream would stay
        in that stream's pool, out of the compute's reach); the copy stream waits for the work queued on the compute
        stream so far, which the allocation is ordered after."""
        if self._back is not None or self.pieces is None:
            return
        if not self.pinned:
            self._back = (self._copy_back(self.device), None)
            return
        out = self._empty(self.device)
        stream = _copy_stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            out = self._copy_into(out)
            done = torch.cuda.Event()
            done.record(stream)
        self._back = (out, done)

    def take(self) -> torch.Tensor:
        """The tensor back on its device, for the one backward that needs it: the pinned pieces are released, and
        the copy made before this one starts its way back (``prefetch``)."""
        self.prefetch()
        out, done = self._back
        if done is not None:
            torch.cuda.current_stream(self.device).wait_event(done)
        self.pieces, self._back = None, None
        previous = self.previous() if self.previous is not None else None
        if previous is not None:
            previous.prefetch()
        return out


_LAST_COPY: dict[torch.device, weakref.ref] = {}


def _last_copy(device: torch.device) -> HostCopy | None:
    """The host copy the previous checkpointed layer made on ``device``, if its backward has not taken it yet. The
    chain follows the order of forwards: after two forwards before one backward (two models, a pair of rows), the
    first layer of the second links to the last of the first, whose copy back then starts early and holds its
    device buffer until its own backward takes it; the results are the same."""
    ref = _LAST_COPY.get(device)
    copy = ref() if ref is not None else None
    return copy if copy is not None and copy.pieces is not None else None


class _HostCheckpoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run: Callable, hidden: torch.Tensor) -> torch.Tensor:
        device = hidden.device
        ctx.run, ctx.device = run, device
        ctx.autocast = {"enabled": torch.is_autocast_enabled(device.type),
                        "dtype": torch.get_autocast_dtype(device.type)}
        ctx.cpu_rng = torch.get_rng_state()
        ctx.device_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        ctx.host = HostCopy(hidden.detach(), previous=_last_copy(device))
        _LAST_COPY[device] = weakref.ref(ctx.host)
        with torch.no_grad():
            out = run(hidden)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"activation offload expects a decoder layer that returns a tensor, got {type(out)}")
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        hidden = ctx.host.take().requires_grad_(True)
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
