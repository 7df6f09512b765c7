"""A peft LoRA layer and its frozen base (4-bit NF4 or plain) as one autograd function.

Why: peft's LoRA forward on a 4-bit layer is ``base(x).clone() + lora_B(lora_A(dropout(x))) * scaling``: a copy of
the base output, a scaled copy of the LoRA output and an add, each a full pass over a [tokens, out_features] tensor,
a kept dropout mask and dropped copy of ``x``, and in backward as many passes again plus the sum of two input
gradients. At 8K tokens on a 13B layer that is 21% of a training step (benchmarks/lever_costs.py), against a few
percent for the LoRA matmuls themselves. Here one function writes ``scaling * (dropout(x) A^T) B^T``, then lets
the base matmul ``x W^T`` (W dequantized, as bitsandbytes does) accumulate into it (``addmm_``), and keeps for
backward only ``x`` (shared with the other projections of the same input), the small ``dropout(x) A^T`` and the random
generator's state. Backward dequantizes W again, unless a checkpoint's recomputation kept it
(``KEEP_RECOMPUTED_WEIGHT``, the default), accumulates the LoRA input gradient into the base's with one
``addmm_`` (or one masked ``addcmul_`` under dropout), and replays the dropout once, for lora_A's gradient and
the mask of the input gradient.

A checkpointed decoder layer is run again in backward to recompute what its backward needs. The output of its last
projection (``mlp.down_proj``) is only added to the residual stream: nothing in backward reads it. There, inside a
backward pass, the function computes only what its own backward keeps (the LoRA input ``dropout(x) A^T``) and
returns zeros instead of running the base matmul again: one of the layer's seven matmuls (a fifth of its FLOPs)
fewer per step.

Same semantics as peft: the same dropout masks drawn at the same points of the random stream, fp32 LoRA weights
cast to the compute dtype, the same gradients (tests/model/test_fused_lora.py, on the whole model, against peft).
With ``dropout_kernel=True`` (``use_fused_lora``) and dropout, the masks are drawn inside Triton kernels instead
(lightning_review.model.lora_kernels): no dropped copy, no kept or replayed mask tensor, but not peft's masks.

Applied by switching the class of each peft LoRA layer of one model to a subclass whose forward takes this path
when it can (one active vanilla LoRA adapter, not merged, a frozen base, a bias-free ``lora_A``/``lora_B``) and
peft's own forward otherwise: adapter files, merging and export are unchanged.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import weakref
from typing import Literal, NamedTuple, get_args

import torch
import torch.nn.functional as F

from ..errors import UserError
from .lora_dropout import RegeneratedDropoutLinear, draw_dropout, generator_state, replay_dropout_and_mask


DropoutKernel = Literal["torch", "triton", "auto"]

# Forward: write ``scaling * (dropout(x) A^T) B^T`` first and let the base matmul add ``x W^T`` into it (cuBLAS
# reads the addend in its epilogue, under the compute), instead of adding the LoRA product into the base output
# afterwards, which reads and writes the whole output once more. One 13B layer at 8K on an H200 (lora_parts.py):
# 0.31 + 7.53 ms against 7.47 + 0.74; a training step (train_step.py, same run) +1.4% on the length mix, even at 8K.
# False: the other order, kept to measure one against the other (train_step.py set.fused_lora.ACCUMULATE_IN_BASE).
ACCUMULATE_IN_BASE = True
# Dequantize a 4-bit NF4 base weight in one Triton kernel (lightning_review.model.nf4_dequant, bitwise
# bitsandbytes' result) instead of bitsandbytes' three kernels a call. Measured on an H200 (benchmarks/RESULTS.md,
# session 13): 0.366 against 0.441 ms a 13B layer's seven weights, a 13B step at 8K 6,917 against 6,857 tokens/s
# (+0.9%). "cuda" (the default): on CUDA devices, where Triton compiles it; "always": wherever Triton runs, its
# interpreter on the CPU included (the tests); "never": bitsandbytes' dequantize_4bit.
DequantizeIn = Literal["cuda", "always", "never"]
DEQUANTIZE_IN_ONE_KERNEL: DequantizeIn = "cuda"
# A checkpointed layer's recomputation keeps each base weight it dequantized (or cast) for its backward, which then
# does not dequantize it again: 6 of a Llama layer's 20 dequantizations a step (down_proj's recomputation skips its
# base), for up to one layer's weights in the compute dtype held from the recomputation to the backward (13B: about
# 0.5 GB, not at the step's peak). Measured on an H200 (benchmarks/RESULTS.md, session 13): a 13B step at 8K 6,697
# against 6,559 tokens/s (+2.1%), peak 18.26 against 18.25 GB. False: dequantize again in backward.
KEEP_RECOMPUTED_WEIGHT = True
# A checkpointed layer's recomputation takes the LoRA input ``dropout(x) A^T`` its forward computed (kept for as
# long as the forward's graph node lives: [tokens, r] a projection, 13B at 8K with r 64 about 280 MB for 40 layers)
# instead of reading x and drawing the mask again, when nothing else would differ: the mask drawn in the dropout
# kernels (the seed is still drawn, so the generator moves on the same) or no dropout. Under torch's dropout the
# recomputation must draw its mask again to leave the generator where the forward left it, and computes it again.
KEEP_LORA_DOWN = True
# Under the dropout kernels, backward draws each mask once for both of its gradients (lora_kernels'
# ``add_dropout_lora_grads_``: lora_A's and the input's in one kernel) instead of once in each of two kernels.
# Measured on an H200 (benchmarks/RESULTS.md, session 16) with its first launch shape: 13B 8K +0.3%, 16K +0.2%.
# False: the two kernels, as before session 16.
JOINT_DROPOUT_GRADS = True


def _triton_runs_on(device: torch.device) -> bool:
    """Whether a Triton kernel can run on ``device``: compiled on CUDA, or Triton's interpreter on the CPU
    (TRITON_INTERPRET=1, set by the tests before Triton is imported)."""
    return device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


def resolve_dropout_kernel(kernel: DropoutKernel, device: torch.device) -> bool:
    """Whether LoRA dropout masks are drawn inside Triton kernels (``triton``) rather than by torch's dropout
    (``torch``: peft's masks); ``auto``: the kernels on CUDA where Triton is installed, torch's dropout elsewhere;
    ``triton`` where it cannot run is an error that says why."""
    if kernel not in get_args(DropoutKernel):
        raise UserError(f"model.lora_dropout_kernel must be one of {', '.join(get_args(DropoutKernel))}, "
                        f"got {kernel!r}")
    triton_installed = importlib.util.find_spec("triton") is not None
    if kernel == "auto":
        return device.type == "cuda" and triton_installed
    if kernel == "torch":
        return False
    if not triton_installed:
        raise UserError("model.lora_dropout_kernel=triton: Triton is not installed (`pip install triton`, on Linux "
                        "it comes with CUDA builds of torch); or set model.lora_dropout_kernel to torch or auto")
    if not _triton_runs_on(device):
        raise UserError(f"model.lora_dropout_kernel=triton runs on CUDA only (device {device}); set "
                        "model.lora_dropout_kernel to torch or auto (TRITON_INTERPRET=1 runs it on the CPU, slowly, "
                        "for tests)")
    return True


def _base_weight(base: torch.nn.Module, dtype: torch.dtype) -> torch.Tensor:
    """The base layer's weight [out, in] in ``dtype``: bitsandbytes' 4-bit weights dequantized (what its own
    matmul does for more than one token), a plain Linear's weight cast."""
    quant_state = getattr(base.weight, "quant_state", None)
    if quant_state is None:
        return base.weight.to(dtype)
    device = base.weight.device
    if DEQUANTIZE_IN_ONE_KERNEL not in get_args(DequantizeIn):
        raise ValueError(f"fused_lora.DEQUANTIZE_IN_ONE_KERNEL must be one of {get_args(DequantizeIn)}, got "
                         f"{DEQUANTIZE_IN_ONE_KERNEL!r}")
    if DEQUANTIZE_IN_ONE_KERNEL == "always" and _triton_runs_on(device) or \
            DEQUANTIZE_IN_ONE_KERNEL == "cuda" and device.type == "cuda":
        from .nf4_dequant import dequantize_nf4, supports

        if supports(quant_state):
            return dequantize_nf4(base.weight.data, quant_state, dtype)
    import bitsandbytes.functional as bnb_functional

    return bnb_functional.dequantize_4bit(base.weight.data, quant_state).to(dtype)


_NO_WEIGHTS: dict[tuple, torch.Tensor] = {}


def _no_weight(base: torch.nn.Module, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """What a forward that does not keep the weight saves in its place: the weight's shape, dtype and device (a
    checkpoint checks that a recomputation saves tensors of the same metadata), no memory (strides 0). One per
    shape, dtype and device, made once: nothing writes to it, and making it was a fifth of a call's host time."""
    shape = getattr(base.weight, "quant_state", None)
    shape = tuple(shape.shape) if shape is not None else tuple(base.weight.shape)
    key = (shape, dtype, device)
    placeholder = _NO_WEIGHTS.get(key)
    if placeholder is None:
        placeholder = _NO_WEIGHTS[key] = torch.empty((), dtype=dtype, device=device).expand(shape)
    return placeholder


def _is_no_weight(t: torch.Tensor) -> bool:
    return t.dim() > 0 and all(stride == 0 for stride in t.stride())


def _backward_weight(ctx) -> torch.Tensor:
    """The weight for the input gradient: the one the recomputation kept, else dequantized again."""
    return ctx.weight if ctx.weight is not None else _base_weight(ctx.base, ctx.dtype)


class _KeptDown:
    """A forward's ``dropout(x) A^T`` for its checkpoint's recomputation (``KEEP_LORA_DOWN``), with what the
    recomputation checks before it takes it: the input's shape and lora_A's version (an optimizer step between the
    two would change lora_A in place)."""

    __slots__ = ("down", "shape", "version", "__weakref__")

    def __init__(self, down: torch.Tensor, shape: torch.Size, version: int):
        self.down, self.shape, self.version = down, shape, version


def _generator_position(device: torch.device) -> tuple:
    """Where torch's generator of ``device`` stands: a forward and its checkpoint's recomputation (which restores
    the generator) are at the same position when they reach the same LoRA layer. CUDA's is two integers read on the
    host; the CPU's (the tests) its whole state."""
    if device.type == "cuda":
        generator = torch.cuda.default_generators[device.index if device.index is not None
                                                  else torch.cuda.current_device()]
        return generator.initial_seed(), generator.get_offset()
    return (bytes(torch.get_rng_state().numpy()),)


_ABSENT = object()


class _KeptDowns:
    """One LoRA layer's kept ``dropout(x) A^T``, by generator position. Each is held by its forward's graph node
    (a weak reference here): freed with the graph, or by the recomputation that takes it, or by the node's
    backward. Two forwards at the same position (no dropout, no other draw between them) are kept by neither: their
    recomputations compute it again."""

    def __init__(self):
        self._by_position: dict[tuple, weakref.ref | None] = {}

    def __getstate__(self) -> dict:  # a pickled or copied model keeps nothing of a step in flight
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def keep(self, position: tuple, down: torch.Tensor, x: torch.Tensor, lora_a: torch.Tensor) -> _KeptDown:
        kept = _KeptDown(down, x.shape, lora_a._version)
        if len(self._by_position) >= 8:  # forwards never recomputed (layers not checkpointed): their freed graphs
            self._by_position = {k: ref for k, ref in self._by_position.items() if ref is None or ref() is not None}
        held = self._by_position.get(position, _ABSENT)  # None: a collision already; else a weak reference
        collides = held is None or (held is not _ABSENT and held() is not None)  # a freed forward's does not
        self._by_position[position] = None if collides else weakref.ref(kept)
        return kept

    def take(self, position: tuple, x: torch.Tensor, lora_a: torch.Tensor) -> torch.Tensor | None:
        ref = self._by_position.pop(position, None)
        kept = ref() if ref is not None else None
        if kept is None or kept.down is None or kept.shape != x.shape or kept.version != lora_a._version:
            return None
        down, kept.down = kept.down, None
        return down


class _Call(NamedTuple):
    """One call's settings, one argument of ``_FusedLoRA.apply`` (which inspects each argument it is given: four
    instead of thirteen). ``recomputing``: inside a checkpoint's recomputation, which keeps the weight it
    dequantizes (KEEP_RECOMPUTED_WEIGHT) and takes the forward's LoRA product (KEEP_LORA_DOWN, with ``kept_downs``
    and the generator's ``position``)."""

    base: torch.nn.Module
    scaling: float
    p: float
    dtype: torch.dtype
    dropout_dtype: torch.dtype
    output_unread: bool = False
    dropout_kernel: bool = False
    recomputing: bool = False
    kept_downs: _KeptDowns | None = None
    position: tuple | None = None


class _FusedLoRA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor, call: _Call) -> torch.Tensor:
        base, scaling, p, dtype, dropout_dtype, output_unread, dropout_kernel, recomputing, kept_downs, position = call
        ctx.base, ctx.scaling, ctx.p, ctx.dtype, ctx.dropout_dtype = base, scaling, p, dtype, dropout_dtype
        ctx.kept_down = None
        ctx.dropout_kernel = dropout_kernel = dropout_kernel and p > 0
        ctx.rng = generator_state(x.device) if p > 0 and not dropout_kernel else None
        with torch.autocast(x.device.type, enabled=False):
            xin = x.to(dtype)
            down = kept_downs.take(position, x, lora_a) if kept_downs is not None and recomputing else None
            if dropout_kernel:  # the mask drawn inside the kernel from a seed, the only thing kept of it
                from .lora_kernels import dropout_lora_down, new_seed

                seed = new_seed(x.device)  # drawn even when down is kept: the generator moves on the same
                if down is None:
                    down = dropout_lora_down(xin.reshape(-1, x.shape[-1]), lora_a.to(dtype), seed, p)
                    down = down.view(*x.shape[:-1], -1)
            elif down is None:
                seed = None
                source = draw_dropout(x, p, dropout_dtype).to(dtype) if p > 0 else xin
                down = F.linear(source, lora_a.to(dtype))  # [..., r]
                del source
            else:
                seed = None
            if kept_downs is not None and not recomputing:
                ctx.kept_down = kept_downs.keep(position, down, x, lora_a)
            kept = _no_weight(base, dtype, x.device) if KEEP_RECOMPUTED_WEIGHT else None
            if output_unread:  # a recomputation that no one reads this output of: no memory, no matmul
                ctx.save_for_backward(x, lora_a, lora_b, down, seed, kept)
                return xin.new_zeros(()).expand(*x.shape[:-1], lora_b.shape[0])
            weight = _base_weight(base, dtype)
            if KEEP_RECOMPUTED_WEIGHT:  # see KEEP_RECOMPUTED_WEIGHT: the same metadata in forward and recomputation
                kept = weight if recomputing else kept
            ctx.save_for_backward(x, lora_a, lora_b, down, seed, kept)
            bias = base.bias.to(dtype) if base.bias is not None else None
            if ACCUMULATE_IN_BASE:
                addend = bias if bias is not None else xin.new_empty(())  # beta 0: never read, no fill kernel
                out = torch.addmm(addend, down.view(-1, down.shape[-1]), lora_b.to(dtype).t(),
                                  beta=1 if bias is not None else 0, alpha=scaling)
                out.addmm_(xin.reshape(-1, x.shape[-1]), weight.t())
                return out.view(*x.shape[:-1], -1)
            out = F.linear(xin, weight, bias)
            out.view(-1, out.shape[-1]).addmm_(down.view(-1, down.shape[-1]), lora_b.to(dtype).t(), alpha=scaling)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, lora_a, lora_b, down, seed, kept = ctx.saved_tensors
        dtype, scaling = ctx.dtype, ctx.scaling
        if ctx.kept_down is not None:  # not held past this backward, whether or not a recomputation took it
            ctx.kept_down.down = None
        ctx.weight = kept if kept is not None and not _is_no_weight(kept) else None
        grad = grad_out.reshape(-1, grad_out.shape[-1]).to(dtype)
        grad_b = None
        with torch.autocast(x.device.type, enabled=False):
            unread = grad.new_empty(())  # beta 0: the scaling goes into the matmul, no separate pass over its output
            grad_down = torch.addmm(unread, grad, lora_b.to(dtype), beta=0, alpha=scaling)  # [tokens, r]
            if ctx.needs_input_grad[2]:
                grad_b = torch.addmm(unread, grad.t(), down.reshape(-1, down.shape[-1]), beta=0,
                                     alpha=scaling).to(lora_b.dtype)
            input_grads = _kernel_input_grads if ctx.dropout_kernel else _torch_input_grads
            grad_x, grad_a = input_grads(ctx, grad, grad_down, x, lora_a, seed)
        ctx.weight = None  # not held until the graph is freed
        return grad_x, grad_a, grad_b, None


def _torch_input_grads(ctx, grad: torch.Tensor, grad_down: torch.Tensor, x: torch.Tensor, lora_a: torch.Tensor,
                       seed: None) -> tuple:
    """The gradients of x and lora_A under torch's dropout, replayed once from the forward's generator state."""
    dtype, p = ctx.dtype, ctx.p
    grad_x = grad_a = source = mask = None
    if p > 0 and (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
        source, mask = replay_dropout_and_mask(x, p, ctx.dropout_dtype, ctx.rng)  # one draw, both gradients
    if ctx.needs_input_grad[1]:
        source = (source if source is not None else x).reshape(-1, x.shape[-1]).to(dtype)
        grad_a = (grad_down.t() @ source).to(lora_a.dtype)
    del source
    if ctx.needs_input_grad[0]:
        a = lora_a.to(dtype)
        grad_x = grad @ _backward_weight(ctx)
        if mask is not None:  # dropout is linear in its input: its gradient is the same mask, scaled
            grad_x.view(x.shape).addcmul_((grad_down @ a).view(x.shape), mask, value=1.0 / (1.0 - p))
        else:
            grad_x.addmm_(grad_down, a)
        grad_x = grad_x.view(x.shape).to(x.dtype)
    return grad_x, grad_a


def _kernel_input_grads(ctx, grad: torch.Tensor, grad_down: torch.Tensor, x: torch.Tensor, lora_a: torch.Tensor,
                        seed: torch.Tensor) -> tuple:
    """The gradients of x and lora_A with the mask drawn inside Triton kernels from the forward's ``seed``."""
    from .lora_kernels import add_dropout_lora_grads_, add_dropout_lora_input_grad_, dropout_lora_a_grad

    dtype, p = ctx.dtype, ctx.p
    grad_x = grad_a = None
    if JOINT_DROPOUT_GRADS and ctx.needs_input_grad[0] and ctx.needs_input_grad[1]:  # one draw of the mask
        grad_x = grad @ _backward_weight(ctx)
        grad_a = add_dropout_lora_grads_(grad_x, grad_down, x.reshape(-1, x.shape[-1]).to(dtype), lora_a.to(dtype),
                                         seed, p).to(lora_a.dtype)
        return grad_x.view(x.shape).to(x.dtype), grad_a
    if ctx.needs_input_grad[1]:
        grad_a = dropout_lora_a_grad(grad_down, x.reshape(-1, x.shape[-1]).to(dtype), seed, p).to(lora_a.dtype)
    if ctx.needs_input_grad[0]:
        grad_x = add_dropout_lora_input_grad_(grad @ _backward_weight(ctx), grad_down, lora_a.to(dtype),
                                              seed, p)
        grad_x = grad_x.view(x.shape).to(x.dtype)
    return grad_x, grad_a


def _dropout_p(dropout: torch.nn.Module, lora_a: torch.nn.Module) -> float | None:
    """The adapter's dropout probability, whether peft's Dropout or folded into lora_A (RegeneratedDropoutLinear);
    None for anything else. Read at each call: a schedule may change a Dropout's p."""
    if isinstance(dropout, torch.nn.Dropout):
        return float(dropout.p)
    if isinstance(dropout, torch.nn.Identity):
        return float(lora_a.dropout_p) if isinstance(lora_a, RegeneratedDropoutLinear) else 0.0
    return None


class _Plan(NamedTuple):
    """What one layer's adapter decides for every call until one of its modules is replaced (``key``: the adapter
    and the identities of its lora_A, lora_B, dropout and base layer): the modules, the base under peft's wrapping
    and whether the fused path can take them at all (``nn.Linear`` lora_A and lora_B; their biases are checked at
    each call). Looked up instead of found again: those lookups were most of the fused path's own host time a call
    (benchmarks/host_overhead.py)."""

    key: tuple
    lora_a: torch.nn.Module
    lora_b: torch.nn.Module
    dropout: torch.nn.Module
    base: torch.nn.Module
    fusable: bool


def _layer_plan(layer, adapter: str) -> _Plan | None:
    """The layer's plan for ``adapter``, made again when any of its modules changed; None where the adapter is not
    a vanilla LoRA one (absent, or a variant such as DoRA)."""
    lora_A = layer.lora_A
    if adapter not in lora_A or adapter in layer.lora_variant:
        return None
    lora_a, lora_b, dropout = lora_A[adapter], layer.lora_B[adapter], layer.lora_dropout[adapter]
    key = (adapter, lora_a, lora_b, dropout, layer.base_layer)
    plan = layer.__dict__.get("_fused_plan")
    if plan is None or plan.key != key:
        fusable = isinstance(lora_a, torch.nn.Linear) and isinstance(lora_b, torch.nn.Linear)
        plan = layer.__dict__["_fused_plan"] = _Plan(key, lora_a, lora_b, dropout, layer.get_base_layer(), fusable)
    return plan


def _fused_forward(layer, x: torch.Tensor, *args, **kwargs) -> torch.Tensor | None:
    """The fused path's output, or None where peft's forward must run (see the module docstring)."""
    if not layer.training:
        return None  # evaluation, generation: bitsandbytes' own path (a 4-bit matrix-vector kernel for one token)
    if args or kwargs or layer.disable_adapters or layer.merged:
        return None
    active = layer.active_adapters
    if len(active) != 1:
        return None
    adapter = active[0]
    plan = _layer_plan(layer, adapter)
    if plan is None or not plan.fusable:
        return None
    lora_a, lora_b, base = plan.lora_a, plan.lora_b, plan.base
    p = _dropout_p(plan.dropout, lora_a)
    if p is None or lora_a.bias is not None or lora_b.bias is not None or base.weight.requires_grad:
        return None
    device = x.device.type
    autocast = torch.is_autocast_enabled(device)
    dtype = torch.get_autocast_dtype(device) if autocast else x.dtype
    a_dtype = lora_a.weight.dtype
    if x.dtype != dtype or (not autocast and a_dtype != dtype):
        return None  # mixed dtypes without autocast: peft's casting rules, not re-implemented here
    # peft draws the mask on x cast to lora_A's dtype (fp32): always over a plain Linear, without autocast over a
    # 4-bit one. The dtype sets the dropout kernel's layout and so which mask a random stream gives.
    casts = layer.casts_input_always or not autocast
    dropout_dtype = a_dtype if casts and getattr(layer, "cast_input_dtype_enabled", True) else x.dtype
    # inside a backward pass this forward is a checkpoint's recomputation
    recomputing = torch._C._current_graph_task_id() != -1
    output_unread = layer.output_unread_when_recomputed and recomputing
    dropout_kernel = layer.dropout_kernel and p > 0 and _kernel_takes(x)
    # a graph node to hold it (not a reentrant checkpoint's first forward, under no_grad), and a recomputation that
    # leaves the generator as the forward did without drawing the mask again
    keeps = KEEP_LORA_DOWN and torch.is_grad_enabled() and (dropout_kernel or p == 0)
    kept_downs = layer.__dict__.setdefault("_kept_downs", _KeptDowns()) if keeps else None
    position = _generator_position(x.device) if keeps else None
    call = _Call(base, float(layer.scaling[adapter]), p, dtype, dropout_dtype, output_unread, dropout_kernel,
                 recomputing, kept_downs, position)
    return _FusedLoRA.apply(x, lora_a.weight, lora_b.weight, call)


_fits = None


def _kernel_takes(x: torch.Tensor) -> bool:
    """Whether the Triton dropout kernels can take this call's input (else torch's dropout, the same call through).
    lora_kernels (Triton) imported on the first call that asks, not with this module."""
    global _fits
    if _fits is None:
        from .lora_kernels import fits

        _fits = fits
    return _fits(x)


@functools.cache
def _fused_class(peft_class: type) -> type:
    """A subclass of one peft LoRA layer class whose forward takes the fused path where it can."""

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        out = _fused_forward(self, x, *args, **kwargs)
        return out if out is not None else peft_class.forward(self, x, *args, **kwargs)

    from peft.tuners.lora.layer import Linear

    return type(f"Fused{peft_class.__name__}", (peft_class,),
                {"forward": forward, "__module__": __name__, "output_unread_when_recomputed": False,
                 "dropout_kernel": False,
                 "casts_input_always": peft_class is Linear})


def fusable_classes() -> tuple[type, ...]:
    """peft's LoRA layer classes over a plain Linear and over bitsandbytes' Linear4bit (where installed)."""
    from peft.tuners.lora.layer import Linear

    classes: list[type] = [Linear]
    try:
        from peft.tuners.lora.bnb import Linear4bit
    except ImportError:  # bitsandbytes not installed: no 4-bit layers to switch
        pass
    else:
        classes.append(Linear4bit)
    return tuple(classes)


def use_fused_lora(model: torch.nn.Module, dropout_kernel: bool = False) -> int:
    """Switch every peft LoRA Linear / Linear4bit layer of ``model`` to the fused path; returns how many. The last
    projection of each decoder layer's MLP (its output only feeds the residual stream) skips its base matmul when
    a checkpoint recomputes the layer. ``dropout_kernel``: masks drawn inside Triton kernels (module docstring)."""
    from .loading import decoder_layers

    classes = fusable_classes()
    switched = 0
    for module in model.modules():
        if type(module) in classes:
            module.__class__ = _fused_class(type(module))
            module.dropout_kernel = dropout_kernel
            switched += 1
    for layer in decoder_layers(model):
        down_proj = getattr(getattr(layer, "mlp", None), "down_proj", None)
        if down_proj is not None and type(down_proj).__module__ == __name__:
            down_proj.output_unread_when_recomputed = True
    return switched
