"""Triton kernels that draw LoRA's dropout mask inside the matmuls that use it.

Why: with dropout, the fused LoRA path (lightning_review.model.fused_lora) still makes full passes over a
[tokens, in_features] tensor that only exist to carry the mask: a dropped copy of ``x`` in forward (written, then
read by the ``lora_A`` matmul), and in backward the replayed copy and its boolean mask, the product
``grad_down @ A`` and the masked add into the input gradient. Here each kernel draws the mask from a counter-based
generator (Philox, keyed by a seed and each element's position) in registers, where it reads ``x`` or writes the
gradient (measured on an H200: a 13B training step 1.04x faster at 8K, 1.07x at 16K, 1.06x on the length mix, and
0.5 GB less at 16K; benchmarks/RESULTS.md):

- ``dropout_lora_down``: ``dropout(x) A^T`` from one read of ``x``;
- ``dropout_lora_a_grad``: ``grad_down^T dropout(x)``, lora_A's weight gradient, from one read of ``x`` (the rows
  split across programs, their partial sums added after);
- ``add_dropout_lora_input_grad_``: ``grad_x += mask / (1 - p) * (grad_down A)``, in place in the base's input
  gradient.
- ``add_dropout_lora_grads_``: the last two in one kernel, from one draw of the mask (fused_lora's ``JOINT_DROPOUT_GRADS``, the default:
  the draw bounds both).

The same seed gives the same mask in all of them, in forward, in a checkpoint's recomputation (the seed is drawn from
torch's generator, which checkpointing restores) and in backward. What differs from peft: the masks are not the ones
torch's dropout would draw from the same generator state, and p is kept to 16 bits (0.05 -> 0.0500031, the scale
``1 / (1 - p)`` of that p, so the expectation is exactly x): each Philox call feeds eight elements
(tests/model/test_lora_kernels.py). Chosen by ``LongQLoRAModule.lora_dropout_kernel`` (``triton``, or ``auto`` on
CUDA; the default ``torch`` keeps peft's masks).

On a machine without a GPU, Triton's interpreter runs these kernels on CPU tensors when ``TRITON_INTERPRET=1`` is set
before this module is imported (the tests do); it cannot run bfloat16 there.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

# mask offsets are int32 (one Philox counter): rows * in_features must stay below this
MAX_ELEMENTS = 2**31 - 1


class Tiles(NamedTuple):
    """How one kernel is launched: a program's tile of ``rows`` x ``cols`` of x, its warps and software-pipelining
    stages, and ``splits``: for ``down``, how many programs share one block of rows (each a part of the columns,
    their fp32 partial sums added after); for ``a_grad``, programs per SM (the rows of one column block shared among
    them). The mask depends on an element's row and column only, never on these."""

    rows: int = 64
    cols: int = 64
    warps: int = 4
    stages: int = 3
    splits: int = 1


# Philox rounds per draw. Random123 (Salmon et al., SC'11) reports Philox4x32 passing TestU01's BigCrush from 7
# rounds and defaults to 10 for margin; a dropout mask needs no more than 7. The two kernels that read x run at 4x
# their memory floor, and 7 rounds measured +1.5% a 13B 8K training step on an H200 (benchmarks/RESULTS.md).
PHILOX_ROUNDS = 7
# per kernel, the fastest over a 13B layer's seven projections at 8K tokens on an H200 among the candidates of
# benchmarks/lora_parts.py --sweep (results/lora_parts_sweep_13b_8192_h200.json): against 64 x 64 tiles everywhere,
# down 0.58 against 0.61 ms a layer, lora_A's gradient 0.60 against 0.87
TILES = {"down": Tiles(rows=128, cols=64, splits=4), "a_grad": Tiles(rows=64, cols=128, splits=8),
         "input_grad": Tiles(), "grads": Tiles(rows=32, cols=128, splits=8)}
# grads: the fastest of ten candidates at 13B 8K on an H200 (session 16, lora_parts_grads_sweep_13b_8192_h200.json):
# 1.12 ms a layer against 1.18 for the two kernels it replaces (a_grad 0.54, input_grad 0.65); the first guess,
# 64 x 128 with 8 warps, took 1.47.


@triton.jit
def _keep(seed, rows, start, n_cols, threshold, BLOCK_K: tl.constexpr, ROUNDS: tl.constexpr):
    """The keep mask of columns start .. start + BLOCK_K of ``rows`` in a [*, n_cols] tensor (n_cols and start
    multiples of 8): one 16-bit uniform draw per element, kept where >= threshold. One Philox call gives 128 bits,
    eight elements' draws: a quarter of the integer work of one call per element, which would outweigh the memory
    traffic these kernels save."""
    groups = start // 8 + tl.arange(0, BLOCK_K // 8)
    r0, r1, r2, r3 = tl.randint4x(seed, rows[:, None] * (n_cols // 8) + groups[None, :], ROUNDS)
    low = tl.join(tl.join(r0 & 0xFFFF, r1 & 0xFFFF), tl.join(r2 & 0xFFFF, r3 & 0xFFFF))
    high = tl.join(tl.join(r0 >> 16, r1 >> 16), tl.join(r2 >> 16, r3 >> 16))
    draws = tl.reshape(tl.join(low, high), (rows.shape[0], BLOCK_K))  # each group's 8 draws on its 8 columns
    return draws.to(tl.int32) >= threshold


@triton.jit
def _dropped_tile(x_ptr, seed, rows, row_ok, start, n_cols, stride_x, threshold, BLOCK_K: tl.constexpr,
                  ROUNDS: tl.constexpr):
    """The tile (rows, start .. start + BLOCK_K) of x [*, n_cols] under its mask, unscaled; zeros outside x."""
    cols = start + tl.arange(0, BLOCK_K)
    x = tl.load(x_ptr + rows[:, None] * stride_x + cols[None, :], mask=row_ok[:, None] & (cols[None, :] < n_cols),
                other=0.0)
    return tl.where(_keep(seed, rows, start, n_cols, threshold, BLOCK_K, ROUNDS), x, tl.zeros_like(x))


@triton.jit
def _dot(a, b, IEEE: tl.constexpr):
    """a @ b accumulated in fp32; exact fp32 products for fp32 inputs (no TF32)."""
    if IEEE:
        return tl.dot(a, b, input_precision="ieee")
    return tl.dot(a, b)


@triton.jit
def _down_kernel(x_ptr, a_ptr, out_ptr, seed_ptr, n_rows, n_cols, rank, cols_per_split, stride_x, stride_a,
                 stride_out, stride_split, threshold, scale,
                 IEEE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr,
                 ROUNDS: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    first = tl.program_id(1) * cols_per_split
    ranks = tl.arange(0, BLOCK_R)
    seed = tl.load(seed_ptr)
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    for start in range(first, first + cols_per_split, BLOCK_K):
        cols = start + tl.arange(0, BLOCK_K)
        x = _dropped_tile(x_ptr, seed, rows, rows < n_rows, start, n_cols, stride_x, threshold, BLOCK_K, ROUNDS)
        a = tl.load(a_ptr + ranks[None, :] * stride_a + cols[:, None],
                    mask=(ranks[None, :] < rank) & (cols[:, None] < n_cols), other=0.0)  # [BLOCK_K, BLOCK_R]
        acc += _dot(x, a, IEEE)
    acc = acc * scale
    out = out_ptr + tl.program_id(1) * stride_split
    tl.store(out + rows[:, None] * stride_out + ranks[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=(rows[:, None] < n_rows) & (ranks[None, :] < rank))


@triton.jit
def _a_grad_kernel(grad_ptr, x_ptr, out_ptr, seed_ptr, n_rows, n_cols, rank, rows_per_split, stride_g, stride_x,
                   threshold, scale, IEEE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
                   BLOCK_R: tl.constexpr, ROUNDS: tl.constexpr):
    col_start = tl.program_id(0) * BLOCK_K
    cols = col_start + tl.arange(0, BLOCK_K)
    split = tl.program_id(1)
    ranks = tl.arange(0, BLOCK_R)
    seed = tl.load(seed_ptr)
    acc = tl.zeros((BLOCK_R, BLOCK_K), dtype=tl.float32)
    first = split * rows_per_split
    for start in range(first, first + rows_per_split, BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)
        in_rows = (rows < n_rows) & (rows < first + rows_per_split)
        x = _dropped_tile(x_ptr, seed, rows, in_rows, col_start, n_cols, stride_x, threshold, BLOCK_K, ROUNDS)
        g = tl.load(grad_ptr + rows[None, :] * stride_g + ranks[:, None],
                    mask=in_rows[None, :] & (ranks[:, None] < rank), other=0.0)  # [BLOCK_R, BLOCK_M]
        acc += _dot(g, x, IEEE)
    acc = acc * scale
    out = out_ptr + split * rank * n_cols
    tl.store(out + ranks[:, None] * n_cols + cols[None, :], acc,
             mask=(ranks[:, None] < rank) & (cols[None, :] < n_cols))


@triton.jit
def _input_grad_kernel(grad_x_ptr, grad_ptr, a_ptr, seed_ptr, n_rows, n_cols, rank, stride_gx, stride_g, stride_a,
                       threshold, scale, IEEE: tl.constexpr, BLOCK_M: tl.constexpr,
                       BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr, ROUNDS: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    col_start = tl.program_id(1) * BLOCK_K
    cols = col_start + tl.arange(0, BLOCK_K)
    ranks = tl.arange(0, BLOCK_R)
    seed = tl.load(seed_ptr)
    g = tl.load(grad_ptr + rows[:, None] * stride_g + ranks[None, :],
                mask=(rows[:, None] < n_rows) & (ranks[None, :] < rank), other=0.0)  # [BLOCK_M, BLOCK_R]
    a = tl.load(a_ptr + ranks[:, None] * stride_a + cols[None, :],
                mask=(ranks[:, None] < rank) & (cols[None, :] < n_cols), other=0.0)  # [BLOCK_R, BLOCK_K]
    lora = _dot(g, a, IEEE)
    keep = _keep(seed, rows, col_start, n_cols, threshold, BLOCK_K, ROUNDS)
    lora = tl.where(keep, lora * scale, tl.zeros_like(lora))
    inside = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    pointers = grad_x_ptr + rows[:, None] * stride_gx + cols[None, :]
    grad_x = tl.load(pointers, mask=inside, other=0.0)
    tl.store(pointers, (grad_x.to(tl.float32) + lora).to(grad_x_ptr.dtype.element_ty), mask=inside)


@triton.jit
def _grads_kernel(grad_x_ptr, grad_ptr, x_ptr, a_ptr, out_ptr, seed_ptr, n_rows, n_cols, rank, rows_per_split,
                  stride_gx, stride_g, stride_x, stride_a, threshold, scale, IEEE: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr, ROUNDS: tl.constexpr):
    """_a_grad_kernel and _input_grad_kernel over the same tiles, from one draw of each tile's mask."""
    col_start = tl.program_id(0) * BLOCK_K
    cols = col_start + tl.arange(0, BLOCK_K)
    split = tl.program_id(1)
    ranks = tl.arange(0, BLOCK_R)
    seed = tl.load(seed_ptr)
    a = tl.load(a_ptr + ranks[:, None] * stride_a + cols[None, :],
                mask=(ranks[:, None] < rank) & (cols[None, :] < n_cols), other=0.0)  # [BLOCK_R, BLOCK_K]
    acc = tl.zeros((BLOCK_R, BLOCK_K), dtype=tl.float32)
    first = split * rows_per_split
    for start in range(first, first + rows_per_split, BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)
        in_rows = (rows < n_rows) & (rows < first + rows_per_split)
        inside = in_rows[:, None] & (cols[None, :] < n_cols)
        keep = _keep(seed, rows, col_start, n_cols, threshold, BLOCK_K, ROUNDS)
        x = tl.load(x_ptr + rows[:, None] * stride_x + cols[None, :], mask=inside, other=0.0)
        g = tl.load(grad_ptr + rows[None, :] * stride_g + ranks[:, None],
                    mask=in_rows[None, :] & (ranks[:, None] < rank), other=0.0)  # [BLOCK_R, BLOCK_M]
        acc += _dot(g, tl.where(keep, x, tl.zeros_like(x)), IEEE)
        lora = _dot(tl.trans(g), a, IEEE)  # [BLOCK_M, BLOCK_K]
        lora = tl.where(keep, lora * scale, tl.zeros_like(lora))
        pointers = grad_x_ptr + rows[:, None] * stride_gx + cols[None, :]
        grad_x = tl.load(pointers, mask=inside, other=0.0)
        tl.store(pointers, (grad_x.to(tl.float32) + lora).to(grad_x_ptr.dtype.element_ty), mask=inside)
    acc = acc * scale
    out = out_ptr + split * rank * n_cols
    tl.store(out + ranks[:, None] * n_cols + cols[None, :], acc,
             mask=(ranks[:, None] < rank) & (cols[None, :] < n_cols))


@triton.jit
def _mask_kernel(out_ptr, seed_ptr, n_rows, n_cols, threshold, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
                 ROUNDS: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    col_start = tl.program_id(1) * BLOCK_K
    cols = col_start + tl.arange(0, BLOCK_K)
    keep = _keep(tl.load(seed_ptr), rows, col_start, n_cols, threshold, BLOCK_K, ROUNDS)
    tl.store(out_ptr + rows[:, None] * n_cols + cols[None, :], keep.to(tl.int8),
             mask=(rows[:, None] < n_rows) & (cols[None, :] < n_cols))


def _rank_block(rank: int) -> int:
    return max(16, triton.next_power_of_2(rank))


def _rows_last_contiguous(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def fits(x: torch.Tensor) -> bool:
    """Whether the kernels can take ``x`` [..., in_features]: int32 offsets, and whole groups of 8 columns."""
    return x.numel() <= MAX_ELEMENTS and x.shape[-1] % 8 == 0


def threshold_and_scale(p: float) -> tuple[int, float]:
    """The 16-bit draw below which an element is dropped, and the scale of the kept ones: p rounded to a multiple
    of 1/65536 (0.05 -> 0.0500031), the scale 1 / (1 - that), so the expectation stays exactly x."""
    threshold = round(p * 65536)
    return threshold, 65536 / (65536 - threshold)


def new_seed(device: torch.device) -> torch.Tensor:
    """A seed for one layer call's mask, drawn from torch's generator on ``device`` (so a checkpoint's
    recomputation, which restores that generator, draws the same one); stays on the device, no synchronisation."""
    return torch.randint(0, 2**31 - 1, (1,), device=device, dtype=torch.int64)


def _tiles(kernel: str, tiles: Tiles | None) -> Tiles:
    return TILES[kernel] if tiles is None else tiles


def _launch(tiles: Tiles) -> dict:
    return {"BLOCK_M": tiles.rows, "BLOCK_K": tiles.cols, "num_warps": tiles.warps, "num_stages": tiles.stages,
            "ROUNDS": PHILOX_ROUNDS}


def dropout_mask(seed: torch.Tensor, shape: tuple[int, int], p: float) -> torch.Tensor:
    """The boolean keep mask [rows, in_features] the other kernels draw from ``seed``: for tests and references."""
    rows, cols = shape
    tiles = TILES["input_grad"]
    out = torch.empty(shape, dtype=torch.int8, device=seed.device)
    grid = (triton.cdiv(rows, tiles.rows), triton.cdiv(cols, tiles.cols))
    _mask_kernel[grid](out, seed, rows, cols, threshold_and_scale(p)[0], BLOCK_M=tiles.rows, BLOCK_K=tiles.cols,
                       ROUNDS=PHILOX_ROUNDS)
    return out.bool()


def dropout_lora_down(x: torch.Tensor, a: torch.Tensor, seed: torch.Tensor, p: float,
                      tiles: Tiles | None = None) -> torch.Tensor:
    """``dropout(x) @ a.T`` for x [rows, in_features], a [rank, in_features], in x's dtype (fp32 accumulation)."""
    x, a = _rows_last_contiguous(x), _rows_last_contiguous(a)
    tiles = _tiles("down", tiles)
    rows, cols = x.shape
    rank = a.shape[0]
    cols_per_split = triton.cdiv(triton.cdiv(cols, max(1, tiles.splits)), tiles.cols) * tiles.cols
    splits = triton.cdiv(cols, cols_per_split)
    if splits == 1:
        out = torch.empty((rows, rank), dtype=x.dtype, device=x.device)
    else:  # each split's fp32 partial sum, added below
        out = torch.empty((splits, rows, rank), dtype=torch.float32, device=x.device)
    _down_kernel[(triton.cdiv(rows, tiles.rows), splits)](
        x, a, out, seed, rows, cols, rank, cols_per_split, x.stride(0), a.stride(0), out.stride(-2),
        out.stride(0) if splits > 1 else 0, *threshold_and_scale(p), IEEE=x.dtype == torch.float32,
        BLOCK_R=_rank_block(rank), **_launch(tiles))
    return out if splits == 1 else out.sum(0).to(x.dtype)


def _splits(rows: int, col_blocks: int, device: torch.device, per_sm: int, block_rows: int) -> int:
    """How many programs share the rows of one column block: ``per_sm`` programs for every SM."""
    programs = per_sm * (torch.cuda.get_device_properties(device).multi_processor_count
                         if device.type == "cuda" else 2)
    return max(1, min(triton.cdiv(rows, block_rows), triton.cdiv(programs, col_blocks)))


def _row_splits(rows: int, cols: int, device: torch.device, tiles: Tiles) -> tuple[int, int, int]:
    """(column blocks, programs per column block, rows per program) of a kernel that sums over the rows (lora_A's
    gradient): each program takes a whole number of row tiles."""
    col_blocks = triton.cdiv(cols, tiles.cols)
    splits = _splits(rows, col_blocks, device, tiles.splits, tiles.rows)
    rows_per_split = triton.cdiv(triton.cdiv(rows, splits), tiles.rows) * tiles.rows
    return col_blocks, triton.cdiv(rows, rows_per_split), rows_per_split


def dropout_lora_a_grad(grad_down: torch.Tensor, x: torch.Tensor, seed: torch.Tensor, p: float,
                        tiles: Tiles | None = None) -> torch.Tensor:
    """lora_A's weight gradient ``grad_down.T @ dropout(x)`` [rank, in_features] in fp32, for grad_down
    [rows, rank] and x [rows, in_features] under the mask ``seed`` drew."""
    grad_down, x = _rows_last_contiguous(grad_down), _rows_last_contiguous(x)
    tiles = _tiles("a_grad", tiles)
    rows, cols = x.shape
    rank = grad_down.shape[1]
    col_blocks, splits, rows_per_split = _row_splits(rows, cols, x.device, tiles)
    partial = torch.empty((splits, rank, cols), dtype=torch.float32, device=x.device)
    _a_grad_kernel[(col_blocks, splits)](
        grad_down, x, partial, seed, rows, cols, rank, rows_per_split, grad_down.stride(0), x.stride(0),
        *threshold_and_scale(p), IEEE=x.dtype == torch.float32, BLOCK_R=_rank_block(rank), **_launch(tiles))
    return partial.sum(0) if splits > 1 else partial[0]


def add_dropout_lora_input_grad_(grad_x: torch.Tensor, grad_down: torch.Tensor, a: torch.Tensor,
                                 seed: torch.Tensor, p: float, tiles: Tiles | None = None) -> torch.Tensor:
    """``grad_x += mask / (1 - p) * (grad_down @ a)`` in place, for grad_x [rows, in_features] (contiguous),
    grad_down [rows, rank], a [rank, in_features]: dropout's gradient is its own mask, scaled."""
    if grad_x.stride(-1) != 1:
        raise ValueError("add_dropout_lora_input_grad_ writes grad_x in place: it must be contiguous in its last dim")
    grad_down, a = _rows_last_contiguous(grad_down), _rows_last_contiguous(a)
    tiles = _tiles("input_grad", tiles)
    rows, cols = grad_x.shape
    rank = a.shape[0]
    grid = (triton.cdiv(rows, tiles.rows), triton.cdiv(cols, tiles.cols))
    _input_grad_kernel[grid](
        grad_x, grad_down, a, seed, rows, cols, rank, grad_x.stride(0), grad_down.stride(0), a.stride(0),
        *threshold_and_scale(p), IEEE=grad_x.dtype == torch.float32, BLOCK_R=_rank_block(rank), **_launch(tiles))
    return grad_x


def add_dropout_lora_grads_(grad_x: torch.Tensor, grad_down: torch.Tensor, x: torch.Tensor, a: torch.Tensor,
                            seed: torch.Tensor, p: float, tiles: Tiles | None = None) -> torch.Tensor:
    """``dropout_lora_a_grad`` and ``add_dropout_lora_input_grad_`` in one kernel: returns lora_A's weight gradient
    ``grad_down.T @ dropout(x)`` [rank, in_features] in fp32 and adds ``mask / (1 - p) * (grad_down @ a)`` into
    grad_x [rows, in_features] in place. Why: the two kernels draw the same mask over the same [rows, in_features]
    tiles, and the draw (Philox's integer work) bounds them; here each tile's mask is drawn once."""
    if grad_x.stride(-1) != 1:
        raise ValueError("add_dropout_lora_grads_ writes grad_x in place: it must be contiguous in its last dim")
    grad_down, x, a = (_rows_last_contiguous(t) for t in (grad_down, x, a))
    tiles = _tiles("grads", tiles)
    rows, cols = x.shape
    rank = a.shape[0]
    col_blocks, splits, rows_per_split = _row_splits(rows, cols, x.device, tiles)
    partial = torch.empty((splits, rank, cols), dtype=torch.float32, device=x.device)
    _grads_kernel[(col_blocks, splits)](
        grad_x, grad_down, x, a, partial, seed, rows, cols, rank, rows_per_split, grad_x.stride(0),
        grad_down.stride(0), x.stride(0), a.stride(0), *threshold_and_scale(p), IEEE=x.dtype == torch.float32,
        BLOCK_R=_rank_block(rank), **_launch(tiles))
    return partial.sum(0) if splits > 1 else partial[0]
