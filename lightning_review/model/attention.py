"""Shifted sparse attention (LongLoRA's S2-Attn) and full causal attention inside packed documents.

Why our own: LongLoRA's reference rolls half the heads with wrap-around (the first half-group sees the last tokens)
and builds its group boundaries from the batch-wide maximum length. Here every group boundary is computed per document
from its true length, shifted groups never wrap, and no query ever sees a key of another document.

The rule, for a document of length L, positions counted from its first token and G = group_size:
- heads [0, H/2):  query i attends to keys j <= i with j // G == i // G;
- heads [H/2, H):  query i attends to keys j <= i with (j + G/2) // G == (i + G/2) // G.
A document no longer than G is a single group in both halves (plain causal attention): there is nothing to connect.
``group_size=None`` is plain causal attention within each document (validation, test, generation).
Positions past the sum of a row's document lengths are padding: each attends only to itself, so outputs stay finite.

Backends (all compute the same function):
- ``grouped``: every group of every document is an independent causal attention; each run of equal full groups is
  reshaped without copying into one call of PyTorch's SDPA with ``is_causal=True`` (cuDNN on an H200; in packed rows
  see CUDNN_PIECES_FROM_GROUP).
- ``flex``: FlexAttention with a block mask built from document ids and positions (no copies; compiled on GPU).
- ``varlen``: every group of every document as one sequence of PyTorch's variable-length flash attention
  (``torch.nn.attention.varlen``, CUDA only): one kernel launch per half of the heads whatever the documents'
  lengths, where ``grouped`` launches one SDPA call per run of equal groups. A row's padding is cut into causal
  sequences a group long (the other backends let each padding token see only itself): no document token sees it
  either way and the loss never reads it, so the real tokens' outputs and every gradient are the same.
- ``reference``: a dense boolean mask through SDPA; O(seq^2) memory, for tests and debugging.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import nullcontext
from functools import cache, partial
from typing import Literal

import torch
import torch.nn.functional as F

from ..errors import UserError

Backend = Literal["auto", "grouped", "flex", "varlen", "reference"]
BACKENDS: tuple[str, ...] = ("auto", "grouped", "flex", "varlen", "reference")
DocLens = list[list[int]]


def _check_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group_size: int | None, doc_lens: DocLens | None):
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"q, k, v must be (batch, heads, seq, head_dim); got {tuple(q.shape)}, {tuple(k.shape)}")
    batch, heads, seq, _ = q.shape
    kv_heads = k.shape[1]
    if k.shape != v.shape or k.shape[0] != batch or k.shape[2] != seq:
        raise ValueError(f"k and v must be (batch, kv_heads, seq, head_dim) matching q {tuple(q.shape)}; "
                         f"got k {tuple(k.shape)}, v {tuple(v.shape)}")
    if heads % kv_heads:
        raise ValueError(f"kv_heads ({kv_heads}) must divide heads ({heads})")
    if group_size is not None:
        if heads < 2:
            raise ValueError(f"S2-Attn shifts half of the heads: it needs at least 2 heads, got {heads}")
        if group_size < 2 or group_size % 2:
            raise ValueError(f"group_size must be an even number >= 2, got {group_size}")
    if doc_lens is not None:
        if len(doc_lens) != batch:
            raise ValueError(f"doc_lens has {len(doc_lens)} rows but the batch has {batch}")
        for row, lens in enumerate(doc_lens):
            if any(int(n) <= 0 for n in lens):
                raise ValueError(f"doc_lens[{row}] = {lens}: every document length must be positive")
            if sum(lens) > seq:
                raise ValueError(f"doc_lens[{row}] sums to {sum(lens)}, more than the sequence length {seq}")


def _normalise_doc_lens(doc_lens: DocLens | None, batch: int, seq: int) -> tuple[tuple[int, ...], ...]:
    if doc_lens is None:
        return tuple((seq,) for _ in range(batch))
    return tuple(tuple(int(n) for n in lens) for lens in doc_lens)


def _groups_of_document(length: int, group_size: int | None, shifted: bool) -> list[tuple[int, int]]:
    """(start, length) of the attention groups of one document, positions relative to the document."""
    if group_size is None or group_size >= length:
        return [(0, length)]
    bounds = list(range(0, length, group_size)) if not shifted else [0, *range(group_size // 2, length, group_size)]
    bounds.append(length)
    return [(a, b - a) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


_CACHE_SIZE = 32


def _pieces(lens: tuple[int, ...], seq: int, group_size: int | None, shifted: bool) -> list[tuple[int, int]]:
    """A row cut into consecutive pieces (length, group length): each piece is ``length // group`` groups of equal
    length, attended independently; padding is a piece with group length 0."""
    pieces: list[tuple[int, int]] = []
    for n in lens:
        for _, g in _groups_of_document(n, group_size, shifted):
            if pieces and group_size is not None and g == group_size and pieces[-1][1] == g:
                pieces[-1] = (pieces[-1][0] + g, g)  # consecutive full groups: one piece, one SDPA call
            else:
                pieces.append((g, g))
    if seq > sum(lens):
        pieces.append((seq - sum(lens), 0))
    return pieces


def _batch_rows(t: torch.Tensor) -> list[torch.Tensor] | tuple[torch.Tensor, ...]:
    """The rows of a batch as views. Not ``t[b]``: its backward zero-fills a tensor of the whole batch and copies the
    row's gradient into it, two passes per row (12 device copies a 13B layer in a profile on an H200). One row is
    ``squeeze``d (its backward is a view), several ``unbind`` (one stack of their gradients)."""
    return [t.squeeze(0)] if t.shape[0] == 1 else t.unbind(0)


def _regular(g: int, group_size: int | None) -> bool:
    """A piece of whole groups or of one half group (each document longer than a group starts its shifted half with
    one): its SDPA calls take few shapes, whatever the documents' lengths."""
    return group_size is not None and g in (group_size, group_size // 2)


def _padded_piece(qp, kp, vp, scale, gqa):
    """One group of a length that is neither a whole nor a half group, zero-padded at its end to a multiple of
    RAGGED_PIECES_PADDED_TO tokens, so that its SDPA call takes one of few shapes (cuDNN's plans made once). The
    attention is causal: no real query sees the padded keys after it, and the padded queries' rows are dropped."""
    n = qp.shape[0]
    pad = -n % RAGGED_PIECES_PADDED_TO
    qs, ks, vs = (F.pad(t, (0, 0, 0, 0, 0, pad)).unsqueeze(0).transpose(1, 2) for t in (qp, kp, vp))
    o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scale, enable_gqa=gqa)
    return o[0, :, :n].transpose(0, 1)  # (n, heads, dim), a view: the row's concatenation copies it


def _grouped_half(q, k, v, layout, seq, group_size, shifted, scale, ragged_backends=None):
    """Causal attention inside each group, on (batch, seq, heads, dim) views. Rows are cut with ``split`` (whose
    backward is one concatenation, not a zero-filled copy per piece); a run of equal full groups is reshaped,
    without copying, into one batched SDPA call. ``ragged_backends``: a context that limits SDPA's kernels, around
    the calls of pieces that are not ``_regular``."""
    heads, kv_heads = q.shape[2], k.shape[2]
    gqa = heads != kv_heads
    rows = []
    for lens, qb, kb, vb in zip(layout, _batch_rows(q), _batch_rows(k), _batch_rows(v)):
        plan = _pieces(lens, seq, group_size, shifted)
        sizes = [n for n, _ in plan]
        outs = []
        for (n, g), qp, kp, vp in zip(plan, qb.split(sizes), kb.split(sizes), vb.split(sizes)):
            if g == 0:  # padding attends only to itself: its output is its own value (finite, ignored by the loss)
                outs.append(vp.repeat_interleave(heads // kv_heads, dim=1) if gqa else vp)
                continue
            ragged = ragged_backends is not None and not _regular(g, group_size)
            if ragged and RAGGED_PIECES_PADDED_TO:
                outs.append(_padded_piece(qp, kp, vp, scale, gqa))
                continue
            qs, ks, vs = (t.reshape(n // g, g, t.shape[1], t.shape[2]).transpose(1, 2) for t in (qp, kp, vp))
            with ragged_backends() if ragged else nullcontext():
                o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scale, enable_gqa=gqa)
            outs.append(o.transpose(1, 2).reshape(n, heads, o.shape[-1]))
        rows.append(outs[0].contiguous() if len(outs) == 1 else torch.cat(outs, dim=0))  # a cat of one still copies
    return rows[0].unsqueeze(0) if len(rows) == 1 else torch.stack(rows)


# Packed rows run their SDPA calls outside cuDNN, which plans every new shape on the CPU (about 1 ms a call in a
# profile on one H200, against 0.3 ms of GPU work for a 4K-token group): the pieces' lengths change from row to row
# and left the GPU waiting (7B, 16K rows of the length mix: 7,233 tokens/s with these kernels, 5,921 with cuDNN
# everywhere). From groups of CUDNN_PIECES_FROM_GROUP tokens up, the pieces of whole or half groups, whose shapes are
# few whatever the documents' lengths, run on cuDNN (SDPA's default on an H200), the others still outside. Measured
# (13B heads, forward + backward, benchmarks/RESULTS.md, session 14): a mix row of 16K 7.99 against 10.17 ms, of 32K
# 24.12 against 31.04, four 4K documents 5.94 against 9.23 (one 16K document on cuDNN: 5.63); but a mix row of 8K
# (groups of 2,048, three documents) took 5.30 against 4.24 ms, so smaller groups keep the old way.
PACKED_ROW_SDPA_BACKENDS = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH")
CUDNN_PIECES_FROM_GROUP: int | None = 4096  # None: every piece of a packed row outside cuDNN, as before session 14
# The other pieces zero-padded at their end to a multiple of this many tokens and run on cuDNN too (0: unpadded,
# outside cuDNN): at most group_size / this many shapes. Off: a 16K mix row's attention took 6.93 against 7.99 ms,
# but the 13B mix step gained 1.0% on a second pass over the same rows and lost 13% on the first (cuDNN plans each
# new shape).
RAGGED_PIECES_PADDED_TO = 0


def cudnn_pieces(group_size: int | None) -> bool:
    """Whether a packed row's whole and half groups run on cuDNN (CUDNN_PIECES_FROM_GROUP)."""
    return CUDNN_PIECES_FROM_GROUP is not None and group_size is not None and group_size >= CUDNN_PIECES_FROM_GROUP


def _grouped(q, k, v, layout, group_size, scale):
    seq = q.shape[2]
    if q.device.type != "cuda" or all(lens == (seq,) for lens in layout):
        return _grouped_groups(q, k, v, layout, group_size, scale)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = [getattr(SDPBackend, name) for name in PACKED_ROW_SDPA_BACKENDS]
    if cudnn_pieces(group_size):
        return _grouped_groups(q, k, v, layout, group_size, scale, partial(sdpa_kernel, backends))
    with sdpa_kernel(backends):
        return _grouped_groups(q, k, v, layout, group_size, scale)


def _head_halves(q, k, v, dim: int) -> tuple[tuple, tuple]:
    """q, k, v cut along the heads axis ``dim`` into the plain half [0, H//2) and the shifted half [H//2, H)
    (LongLoRA's num_heads // 2: with an odd number of heads the shifted part has one more). Where the halves would
    share a key/value head, each query head gets its own copy."""
    heads = q.shape[dim]
    half, ratio = heads // 2, heads // k.shape[dim]
    if half % ratio:
        k, v = k.repeat_interleave(ratio, dim=dim), v.repeat_interleave(ratio, dim=dim)
        ratio = 1
    q_parts, kv_parts = [half, heads - half], [half // ratio, (heads - half) // ratio]
    (q0, q1), (k0, k1), (v0, v1) = (t.split(n, dim=dim) for t, n in ((q, q_parts), (k, kv_parts), (v, kv_parts)))
    return (q0, k0, v0), (q1, k1, v1)


def _grouped_groups(q, k, v, layout, group_size, scale, ragged_backends=None):
    seq = q.shape[2]
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))  # (batch, seq, heads, dim) views, no copy
    if group_size is None:
        out = _grouped_half(qt, kt, vt, layout, seq, None, False, scale, ragged_backends)
    else:
        plain, shifted = _head_halves(qt, kt, vt, dim=2)
        out = torch.cat([_grouped_half(*plain, layout, seq, group_size, False, scale, ragged_backends),
                         _grouped_half(*shifted, layout, seq, group_size, True, scale, ragged_backends)], dim=2)
    return out.transpose(1, 2)


def document_ids_and_positions(layout: tuple[tuple[int, ...], ...], seq: int, device: torch.device | str = "cpu"
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per token: its document (padding tokens get a unique negative id each), its position in it, and its length."""
    doc = torch.empty(len(layout), seq, dtype=torch.long)
    pos = torch.zeros(len(layout), seq, dtype=torch.long)
    length = torch.ones(len(layout), seq, dtype=torch.long)
    for row, lens in enumerate(layout):
        start = 0
        for i, n in enumerate(lens):
            doc[row, start:start + n] = i
            pos[row, start:start + n] = torch.arange(n)
            length[row, start:start + n] = n
            start += n
        doc[row, start:] = -1 - torch.arange(seq - start)
    return doc.to(device), pos.to(device), length.to(device)


def _allowed(doc_q, doc_k, pos_q, pos_k, len_q, second_half, group_size: int | None):
    """The attention rule itself, on broadcastable tensors; shared by the dense reference and FlexAttention."""
    keep = (doc_q == doc_k) & (pos_k <= pos_q)
    if group_size is not None:
        shift = torch.where(second_half, group_size // 2, 0)
        same_group = (pos_q + shift) // group_size == (pos_k + shift) // group_size
        keep = keep & (same_group | (len_q <= group_size))
    return keep


def attention_mask(doc_lens: DocLens | None, batch: int, heads: int, seq: int, group_size: int | None,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Dense boolean mask (batch, heads, seq, seq), True where a query may attend to a key."""
    layout = _normalise_doc_lens(doc_lens, batch, seq)
    doc, pos, length = document_ids_and_positions(layout, seq, device)
    second_half = (torch.arange(heads, device=device) >= heads // 2)[None, :, None, None]
    return _allowed(doc[:, None, :, None], doc[:, None, None, :], pos[:, None, :, None], pos[:, None, None, :],
                    length[:, None, :, None], second_half, group_size)


def _reference(q, k, v, layout, group_size, scale):
    batch, heads, seq, _ = q.shape
    mask = attention_mask([list(r) for r in layout], batch, heads, seq, group_size, q.device)
    ratio = heads // k.shape[1]
    k, v = k.repeat_interleave(ratio, dim=1), v.repeat_interleave(ratio, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


_BLOCK_MASKS: OrderedDict[tuple, object] = OrderedDict()
_compiled_flex = None


def _flex(q, k, v, layout, group_size, scale):
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    global _compiled_flex
    batch, heads, seq, _ = q.shape
    key = (layout, seq, heads, group_size, str(q.device))
    block_mask = _BLOCK_MASKS.get(key)
    if block_mask is None:
        doc, pos, length = document_ids_and_positions(layout, seq, q.device)
        half = heads // 2

        def mask_mod(b, h, q_idx, kv_idx):
            return _allowed(doc[b, q_idx], doc[b, kv_idx], pos[b, q_idx], pos[b, kv_idx], length[b, q_idx],
                            h >= half, group_size)

        # Compiled on CUDA: uncompiled, create_block_mask materialises the dense (batch, heads, seq, seq) mask
        # (320 GiB at 32K tokens and 40 heads).
        with torch.inference_mode(False):  # cached: a training step may use what a validation step made
            block_mask = create_block_mask(mask_mod, batch, heads, seq, seq, device=q.device, _compile=q.is_cuda)
        _BLOCK_MASKS[key] = block_mask
        if len(_BLOCK_MASKS) > _CACHE_SIZE:
            _BLOCK_MASKS.popitem(last=False)
    fn = flex_attention
    if q.is_cuda:
        if _compiled_flex is None:
            # Each (seq, heads) shape compiles once; past dynamo's default limit of 8 shapes (hit by the benchmark
            # on an H200) further shapes would run the slow unfused kernel, which materialises the scores.
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            _compiled_flex = torch.compile(flex_attention, dynamic=False)
        fn = _compiled_flex
    return fn(q, k, v, block_mask=block_mask, scale=scale, enable_gqa=k.shape[1] != heads)


def varlen_boundaries(layout: tuple[tuple[int, ...], ...], seq: int, group_size: int | None, shifted: bool
                      ) -> tuple[list[int], int]:
    """The cumulative sequence starts (``cu_seqlens``) of a batch's rows flattened into one token axis, one sequence
    per attention group of each document and per group-long piece of a row's padding, and the longest sequence."""
    bounds, longest = [0], 0
    for row, lens in enumerate(layout):
        start = row * seq
        pieces = [g for n in lens for _, g in _groups_of_document(n, group_size, shifted)]
        padding = seq - sum(lens)  # causal sequences seen by no document, a group long at most (not padding^2 work)
        step = group_size or padding
        pieces += [min(step, padding - i) for i in range(0, padding, step or 1)]
        for g in pieces:
            start += g
            bounds.append(start)
            longest = max(longest, g)
    return bounds, longest


_VARLEN_BOUNDS: OrderedDict[tuple, tuple[torch.Tensor, int]] = OrderedDict()


def _varlen_bounds(layout, seq, group_size, shifted, device) -> tuple[torch.Tensor, int]:
    """``varlen_boundaries`` as an int32 tensor on ``device``, made once per layout (every layer and pass reuses it)."""
    key = (layout, seq, group_size, shifted, str(device))
    found = _VARLEN_BOUNDS.get(key)
    if found is None:
        bounds, longest = varlen_boundaries(layout, seq, group_size, shifted)
        # not an inference tensor, even when made in validation: varlen_attn saves it for a later training backward
        with torch.inference_mode(False):
            found = _VARLEN_BOUNDS[key] = (torch.tensor(bounds, dtype=torch.int32, device=device), longest)
        if len(_VARLEN_BOUNDS) > 4 * _CACHE_SIZE:
            _VARLEN_BOUNDS.popitem(last=False)
    else:
        _VARLEN_BOUNDS.move_to_end(key)
    return found


def _varlen_function():
    """torch's varlen_attn with its causal switch: ``window_size=(-1, 0)`` from torch 2.11, ``is_causal`` in 2.10."""
    import inspect

    from torch.nn.attention.varlen import varlen_attn

    parameters = inspect.signature(varlen_attn).parameters
    causal = {"window_size": (-1, 0)} if "window_size" in parameters else {"is_causal": True}
    return varlen_attn, causal, "enable_gqa" in parameters


def _varlen(q, k, v, layout, group_size, scale):
    if q.device.type != "cuda":
        raise UserError("attention backend 'varlen' runs PyTorch's flash varlen kernels, on CUDA only: choose "
                        "'grouped' (or 'auto') on this device")
    return _varlen_halves(q, k, v, layout, group_size, scale, *_varlen_function())


def _varlen_halves(q, k, v, layout, group_size, scale, varlen_attn, causal: dict, gqa_flag: bool):
    """The two halves of the heads, each one varlen call over every group of the batch (tests pass a CPU
    ``varlen_attn`` written from its documentation)."""
    batch, heads, seq, dim = q.shape
    # (batch, heads, seq, dim) views of (batch, seq, heads, dim) memory: the rows flatten into one token axis free
    qt, kt, vt = (t.transpose(1, 2).reshape(batch * seq, t.shape[1], dim) for t in (q, k, v))

    def attend(qh, kh, vh, shifted):
        bounds, longest = _varlen_bounds(layout, seq, group_size, shifted, q.device)
        kwargs = dict(causal, scale=scale)
        if qh.shape[1] != kh.shape[1] and gqa_flag:
            kwargs["enable_gqa"] = True
        return varlen_attn(qh, kh, vh, bounds, bounds, longest, longest, **kwargs)

    if group_size is None:
        out = attend(qt, kt, vt, False)
    else:
        plain, shifted = _head_halves(qt, kt, vt, dim=1)
        out = torch.cat([attend(*plain, False), attend(*shifted, True)], dim=1)
    return out.view(batch, seq, heads, dim).transpose(1, 2)


_IMPLEMENTATIONS = {"grouped": _grouped, "flex": _flex, "varlen": _varlen, "reference": _reference}


GROUPED_FROM_TOKENS = 8192
VARLEN_DTYPES = (torch.bfloat16, torch.float16)


@cache
def flash_varlen_runs_on(device: torch.device) -> bool:
    """torch's flash varlen kernels need an NVIDIA GPU of compute capability 8.0 or more (Ampere on); on older ones
    (a T4, a V100) or ROCm ``auto`` keeps ``flex``."""
    if device.type != "cuda" or torch.version.cuda is None:
        return False
    return torch.cuda.get_device_capability(device) >= (8, 0)


def resolve_backend(backend: str, device: torch.device, seq: int, dtype: torch.dtype = torch.bfloat16) -> str:
    """``auto`` by measurement on one H200 (benchmarks/RESULTS.md): ``grouped`` from 8K tokens up (2.2x-3.5x over
    full causal SDPA, cuDNN on whole groups); below, on CUDA in half precision, ``varlen``, whose one launch per half
    of the heads beats ``grouped``'s many small calls (2.52 against 4.24 ms on an 8K row of three documents; a 13B
    step over 8K mix rows 6,277 against 6,075 tokens/s) and, unlike ``flex``, compiles nothing: rows collated at
    their documents' width (``data.packed_width documents``) or unpacked batches change width every step, and
    ``flex`` compiled each new width (that 13B first pass ran 15x slower, session 15). At one fixed width under 8K
    ``flex`` is faster (0.97 against 1.81 ms, one 4K document): name it there. ``flex`` below 8K for float32 on CUDA
    (the flash kernels take only half precision) and on GPUs the flash kernels do not run on (flash_varlen_runs_on),
    ``grouped`` on CPU, where FlexAttention has no backward."""
    if backend not in BACKENDS:
        raise UserError(f"attention backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    if device.type != "cuda" or seq >= GROUPED_FROM_TOKENS:
        return "grouped"
    return "varlen" if dtype in VARLEN_DTYPES and flash_varlen_runs_on(device) else "flex"


def s2_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group_size: int | None,
                 doc_lens: DocLens | None = None, *, backend: Backend = "auto",
                 scale: float | None = None) -> torch.Tensor:
    """Shifted sparse attention within each packed document; ``group_size=None`` gives full causal attention.

    q: (batch, heads, seq, head_dim); k, v: (batch, kv_heads, seq, head_dim), kv_heads dividing heads.
    doc_lens[b]: lengths of the documents packed in row b (summing to at most seq; the rest is padding);
    None means one document filling each row. Returns (batch, heads, seq, head_dim).
    """
    _check_inputs(q, k, v, group_size, doc_lens)
    layout = _normalise_doc_lens(doc_lens, q.shape[0], q.shape[2])
    implementation = _IMPLEMENTATIONS[resolve_backend(backend, q.device, q.shape[2], q.dtype)]
    return implementation(q, k, v, layout, group_size, scale)


def document_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, doc_lens: DocLens | None = None,
                              *, backend: Backend = "auto", scale: float | None = None) -> torch.Tensor:
    """Full causal attention within each packed document (what S2-Attn falls back to outside training)."""
    return s2_attention(q, k, v, None, doc_lens, backend=backend, scale=scale)
