"""One Triton kernel that dequantizes a bitsandbytes NF4 weight, nested (double-quantized) absmax included.

Why: the fused LoRA path (lightning_review.model.fused_lora ``_base_weight``) dequantizes each 4-bit base weight
with ``bitsandbytes.functional.dequantize_4bit`` in forward and again in backward. In a 13B training step at 8K
tokens on an H200 that is 800 calls a step, each three kernels with the nested absmax our loader uses
(``bnb_4bit_use_double_quant=True``): a blockwise 8-bit dequantization of the absmax, an ``add_`` of its offset and
kDequantizeBlockwise's NF4 pass, about 50 us a call against a bandwidth floor of 14-37 us (the packed bytes read and
the bf16 weight written once at 4.8 TB/s): about 42 ms of a 1.27 s step. ``dequantize_nf4`` does it in one launch:
each program reads its packed bytes, the 8-bit absmax codes of its blocks, their fp32 second-level absmax and the
offset, and writes its part of the weight once.

Used by default on CUDA (``fused_lora.DEQUANTIZE_IN_ONE_KERNEL = "cuda"``) since this fifth version (each byte's two
elements stored as one word): on an H200 it is bitwise bitsandbytes' result (the CUDA run of
tests/model/test_nf4_dequant.py) and takes 0.366 against 0.441 ms a 13B layer's seven weights; a 13B training step
at 8K ran 0.9% faster with it (benchmarks/RESULTS.md, session 13). Of the four versions before it, the fast one
faulted and the three that did not ran slower than bitsandbytes (see the kernel's comment).

Semantics are bitsandbytes' (0.50, backends/cuda/ops.py and csrc kDequantizeBlockwise; the CPU backend agrees):
element ``2i`` of the flattened weight is the high nibble of byte ``i``, ``2i + 1`` the low one; a block's absmax is
``code2[q] * absmax2[block // blocksize2] + offset`` in fp32 (dequantize_blockwise, then ``add_``), unfused: the
kernel is compiled with ``enable_fp_fusion=False`` so that the product and the sum are each rounded, as bitsandbytes'
two kernels round them, and not contracted into an FMA; an element is ``NF4[nibble] * absmax`` in fp32, rounded once
to the quant state's dtype (what ``dequantize_4bit`` returns) and then to ``dtype`` (the caller's ``.to(dtype)``).
So the result is bitwise that of ``dequantize_4bit(weight, quant_state).to(dtype)`` (tests/model/test_nf4_dequant.py).

On a machine without a GPU, Triton's interpreter runs the kernel on CPU tensors when ``TRITON_INTERPRET=1`` is set
before this module is imported (the tests do); it cannot run bfloat16 there.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

# outputs a program writes: blocksize-wide rows of the weight, TILE_ELEMENTS // blocksize of them (at least one)
TILE_ELEMENTS = 4096
# 16 warps: 4 packed bytes a thread, so the bytes' load (one b32) and the words' store (one v4.b32) share a layout;
# with 4 warps (16 bytes a thread) Triton converted between them through shared memory (compiled for sm_90, untimed)
WARPS = 16
# the 4-bit block sizes bitsandbytes accepts (dequantize_4bit); the kernel's tile rows need a power of two
BLOCKSIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# bitsandbytes' NF4 table (functional.get_4bit_type("nf4"); csrc dDequantizeNF4), per device
_CODES: dict[torch.device, torch.Tensor] = {}


def supports(quant_state) -> bool:
    """Whether ``dequantize_nf4`` handles this bitsandbytes QuantState: NF4 (not FP4), a block size bitsandbytes
    accepts, a 16/32-bit float dtype, nested absmax or not (a nested one with an 8-bit absmax of power-of-two
    blocks). False means: call bitsandbytes."""
    if getattr(quant_state, "quant_type", None) != "nf4" or quant_state.blocksize not in BLOCKSIZES:
        return False
    if quant_state.dtype not in DTYPES:
        return False
    if getattr(quant_state, "nested", False):
        state2 = quant_state.state2
        blocksize2 = state2.blocksize
        return (quant_state.absmax.dtype == torch.uint8 and state2.absmax.dtype == torch.float32
                and blocksize2 > 0 and blocksize2 & (blocksize2 - 1) == 0 and state2.code.numel() == 256)
    return quant_state.absmax.dtype == torch.float32


def _nf4_code(device: torch.device) -> torch.Tensor:
    if device not in _CODES:
        from bitsandbytes.functional import get_4bit_type

        _CODES[device] = get_4bit_type("nf4", device=device).float().contiguous()
    return _CODES[device]


@triton.jit
def _dequantize_nf4_kernel(packed_ptr, absmax_ptr, code_ptr, code2_ptr, absmax2_ptr, offset_ptr, out_ptr,
                           n_elements, n_bytes, n_blocks, BLOCKSIZE: tl.constexpr, BLOCKSIZE2: tl.constexpr,
                           ROWS: tl.constexpr, NESTED: tl.constexpr, STATE_DTYPE: tl.constexpr,
                           OUT_DTYPE: tl.constexpr, PAIRS: tl.constexpr):
    """Rows ``pid * ROWS ..`` of blocksize elements: each row one quantization block (one absmax), its
    ``BLOCKSIZE // 2`` bytes unpacked high nibble first. With ``PAIRS``, ``out_ptr`` is the weight viewed as words
    twice ``OUT_DTYPE``'s width (int32 for 16-bit out, int64 for fp32) and ``n_elements`` is even."""
    pid = tl.program_id(0)
    blocks = pid * ROWS + tl.arange(0, ROWS)
    block_ok = blocks < n_blocks
    if NESTED:
        q = tl.load(absmax_ptr + blocks, mask=block_ok, other=0).to(tl.int32)
        scale2 = tl.load(absmax2_ptr + blocks // BLOCKSIZE2, mask=block_ok, other=0.0)
        absmax = tl.load(code2_ptr + q) * scale2 + tl.load(offset_ptr)
    else:
        absmax = tl.load(absmax_ptr + blocks, mask=block_ok, other=0.0)
    # Versions timed on an H200 (13B layer, seven weights, bf16 out; benchmarks/RESULTS.md), bitsandbytes in the same
    # run in brackets: (1) tl.join of the two nibble tiles + tl.reshape, 0.277 ms (0.456) but it faulted ("misaligned
    # address" at blocksize 256; tl.reshape, as in triton-lang/triton#2836); (2) each element loading its own byte,
    # 0.494 (0.427); (3) a [rows, blocksize/2, 2] tile, 2.47 (0.424); (4) each byte loaded once, its nibbles written
    # by two strided 2-byte stores (even and odd elements), correct but 4.97 (0.54; 2026-12-02, session 13).
    # This version (5): elements 2i and 2i + 1 are adjacent, so byte i's two values are bitcast, packed into one word
    # (element 2i in the low half: little-endian) and stored at word i: contiguous stores, no reshape, no join:
    # 0.366 ms (0.441), bitwise (session 13). Compiled for sm_90 (bf16 or fp16 out, 16 warps): one st.global.v4.b32
    # a thread (8 elements), its 4 bytes one ld.global.b32, no shared memory; fp32 out (tests only): two
    # st.global.v2.b64 after a conversion through shared memory. A byte count not a multiple of 16 (no Llama
    # weight's) leaves Triton's launcher unsure of the mask's alignment: four st.global.b32 instead.
    byte = blocks[:, None].to(tl.int64) * (BLOCKSIZE // 2) + tl.arange(0, BLOCKSIZE // 2)[None, :]
    even = byte * 2  # element 2i is byte i's high nibble, 2i + 1 its low one
    # masks on the byte index: contiguous, so the loads and the word stores vectorize (``even < n_elements`` has
    # stride 2 and kept them scalar: 16 st.global.b32 a thread, compiled for sm_90 with 4 warps)
    byte_ok = byte < n_bytes
    packed = tl.load(packed_ptr + byte, mask=byte_ok, other=0).to(tl.int32)
    high = (tl.load(code_ptr + (packed >> 4)) * absmax[:, None]).to(STATE_DTYPE).to(OUT_DTYPE)
    low = (tl.load(code_ptr + (packed & 0xF)) * absmax[:, None]).to(STATE_DTYPE).to(OUT_DTYPE)
    if PAIRS:
        if OUT_DTYPE == tl.float32:
            high_bits = high.to(tl.int32, bitcast=True).to(tl.int64) & 0xFFFFFFFF
            low_bits = low.to(tl.int32, bitcast=True).to(tl.int64) & 0xFFFFFFFF
            tl.store(out_ptr + byte, high_bits | (low_bits << 32), mask=byte_ok)
        else:
            high_bits = high.to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF
            low_bits = low.to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF
            tl.store(out_ptr + byte, high_bits | (low_bits << 16), mask=byte_ok)
    else:  # version 4, for an odd element count or an out not aligned to the word
        tl.store(out_ptr + even, high, mask=even < n_elements)
        tl.store(out_ptr + even + 1, low, mask=even + 1 < n_elements)


_TL_DTYPES = {torch.float32: tl.float32, torch.float16: tl.float16, torch.bfloat16: tl.bfloat16}
# the word holding two elements of each output dtype (PAIRS)
_PAIR_DTYPES = {torch.float32: torch.int64, torch.float16: torch.int32, torch.bfloat16: torch.int32}


def dequantize_nf4(weight: torch.Tensor, quant_state, dtype: torch.dtype,
                   out: torch.Tensor | None = None) -> torch.Tensor:
    """``bitsandbytes.functional.dequantize_4bit(weight, quant_state).to(dtype)`` in one kernel launch: the
    [out_features, in_features] (``quant_state.shape``) weight in ``dtype``, written into ``out`` when given (a
    contiguous tensor of that shape and dtype). ``weight``: the packed bytes as bitsandbytes stores them (a
    Params4bit's ``.data``, [n / 2, 1] uint8, or another quant_storage dtype, viewed as bytes)."""
    if not supports(quant_state):
        raise ValueError(f"dequantize_nf4 does not handle this quant state ({quant_state.quant_type}, blocksize "
                         f"{quant_state.blocksize}, {quant_state.dtype}); use bitsandbytes' dequantize_4bit")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype}")
    shape = tuple(quant_state.shape)
    n = math.prod(shape)
    packed = weight.contiguous().view(torch.uint8).reshape(-1)
    if packed.numel() < (n + 1) // 2:
        raise ValueError(f"{packed.numel()} packed bytes cannot hold {n} 4-bit values")
    if out is None:
        out = torch.empty(shape, dtype=dtype, device=packed.device)
    elif tuple(out.shape) != shape or out.dtype != dtype or not out.is_contiguous():
        raise ValueError(f"out must be a contiguous {shape} {dtype} tensor, got {tuple(out.shape)} {out.dtype}")
    if n == 0:
        return out
    blocksize = quant_state.blocksize
    n_blocks = triton.cdiv(n, blocksize)
    code = _nf4_code(packed.device)
    if quant_state.nested:
        state2 = quant_state.state2
        absmax = quant_state.absmax.contiguous()
        code2 = state2.code.to(device=packed.device, dtype=torch.float32).contiguous()
        absmax2 = state2.absmax.contiguous()
        offset = torch.as_tensor(quant_state.offset, dtype=torch.float32, device=packed.device).reshape(1)
        blocksize2 = state2.blocksize
    else:
        absmax, code2, absmax2, offset, blocksize2 = quant_state.absmax.contiguous(), code, code, code, 1
    rows = max(1, TILE_ELEMENTS // blocksize)
    grid = (triton.cdiv(n_blocks, rows),)
    # one word store per byte needs whole pairs (an odd count's last byte has one element: no Llama weight's) and
    # an out aligned to the word (one we allocate is; a caller's slice may not be)
    word = _PAIR_DTYPES[dtype]
    pairs = n % 2 == 0 and out.data_ptr() % word.itemsize == 0
    target = out.view(-1).view(word) if pairs else out
    _dequantize_nf4_kernel[grid](packed, absmax, code, code2, absmax2, offset, target, n, (n + 1) // 2, n_blocks,
                                 BLOCKSIZE=blocksize, BLOCKSIZE2=blocksize2, ROWS=rows, NESTED=quant_state.nested,
                                 STATE_DTYPE=_TL_DTYPES[quant_state.dtype], OUT_DTYPE=_TL_DTYPES[dtype], PAIRS=pairs,
                                 num_warps=WARPS, enable_fp_fusion=False)
    return out
