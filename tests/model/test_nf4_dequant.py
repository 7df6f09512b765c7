"""model.nf4_dequant: one Triton kernel against bitsandbytes' ``dequantize_4bit`` (its CUDA kernel on a GPU, its
pure-torch path on the CPU: see bnb_dequantize), bit for bit: NF4 weights quantized by bitsandbytes itself, nested (double-quantized, as our loader's
``bnb_4bit_use_double_quant=True``) and not, on shapes that are no multiple of the tile. On a machine without CUDA
the kernel runs under Triton's interpreter (float32 and float16 out; its bfloat16 casts truncate, see
test_bfloat16_state_rounds_once_then_casts)."""

import pytest
import torch

pytest.importorskip("triton")
bnb_functional = pytest.importorskip("bitsandbytes.functional")
CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"


def bnb_dequantize(packed: torch.Tensor, state) -> torch.Tensor:
    """bitsandbytes' ``dequantize_4bit``. On the CPU, the same float operations through its pure-torch path
    (bitsandbytes.backends.default: code lookup in float32, times the block's float32 absmax, cast to the state's
    dtype) with the absmax from bitsandbytes: bitsandbytes 0.50.2's native AVX-512 CPU kernel returns wrong values
    when a row's length is not a multiple of the block (96 columns at blocksize 64: off by up to half a block's
    absmax; seen 2026-12-02 on an AMD EPYC with AVX-512, where these tests then failed), its default path does not."""
    if CUDA:
        return bnb_functional.dequantize_4bit(packed, state)
    absmax = state.absmax
    if state.nested:
        absmax = bnb_functional.dequantize_blockwise(state.absmax, state.state2) + state.offset
    code = bnb_functional.get_4bit_type(state.quant_type, packed.device)
    flat = packed.reshape(-1)
    n = state.shape.numel()
    values = code[torch.stack([flat >> 4, flat & 0xF], dim=1).reshape(-1).long()][:n]
    blocks = torch.arange(n, device=packed.device) // state.blocksize
    return (values * absmax.float()[blocks]).reshape(state.shape).to(state.dtype)


def test_the_reference_is_bitsandbytes_where_its_kernel_is_right():
    """On shapes whose rows are whole blocks, bitsandbytes' own kernel (CPU or CUDA) gives the reference exactly."""
    packed, state = quantized((64, 128), 64, True)
    assert torch.equal(bnb_dequantize(packed, state), bnb_functional.dequantize_4bit(packed, state))


def quantized(shape, blocksize, nested, dtype=torch.float32, quant_type="nf4", seed=0):
    """A random weight packed by bitsandbytes as Params4bit stores it ([n / 2, 1] uint8) and its QuantState."""
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(*shape, generator=g) * 0.02).to(device=DEVICE, dtype=dtype)
    return bnb_functional.quantize_4bit(w, blocksize=blocksize, compress_statistics=nested, quant_type=quant_type)


OUT_DTYPES = [torch.float32, torch.float16] + ([torch.bfloat16] if CUDA else [])


@pytest.mark.parametrize("nested", [True, False])
@pytest.mark.parametrize("blocksize", [64, 128, 32, 256])
@pytest.mark.parametrize("shape", [(96, 200), (33, 70), (5, 7)])
def test_bitwise_equal_to_bitsandbytes(nf4, nested, blocksize, shape):
    """Shapes not a multiple of the tile nor of the block (5 x 7: an odd count, a partial last block and byte)."""
    packed, state = quantized(shape, blocksize, nested)
    assert packed.dtype == torch.uint8 and packed.shape == ((shape[0] * shape[1] + 1) // 2, 1)
    assert state.nested == nested
    assert nf4.supports(state)
    expected = bnb_dequantize(packed, state)
    for dtype in OUT_DTYPES:
        got = nf4.dequantize_nf4(packed, state, dtype)
        assert got.shape == shape and got.dtype == dtype
        assert torch.equal(got, expected.to(dtype)), (dtype, (got.float() - expected.float()).abs().max())


def test_several_programs_and_second_level_blocks(nf4, monkeypatch):
    """More blocks than one program's tile and than one second-level (256-code) block of the nested absmax: every
    program's rows and every second-level scale arrive."""
    monkeypatch.setattr(nf4, "TILE_ELEMENTS", 256)
    packed, state = quantized((160, 130), 64, True)  # 325 blocks: two second-level blocks, 82 programs
    assert state.absmax.numel() > state.state2.blocksize
    expected = bnb_dequantize(packed, state)
    assert torch.equal(nf4.dequantize_nf4(packed, state, torch.float32), expected)


@pytest.mark.parametrize("state_dtype", [torch.float16] + ([torch.bfloat16] if CUDA else []))
def test_half_precision_state_rounds_like_bitsandbytes(nf4, state_dtype):
    """bitsandbytes returns the quant state's dtype; asked for another, the kernel rounds to that dtype first, as
    ``dequantize_4bit(...).to(dtype)`` does."""
    packed, state = quantized((48, 96), 64, True, dtype=state_dtype)
    assert state.dtype == state_dtype
    expected = bnb_dequantize(packed, state)
    for dtype in OUT_DTYPES:
        assert torch.equal(nf4.dequantize_nf4(packed, state, dtype), expected.to(dtype)), dtype


@pytest.mark.skipif(CUDA, reason="the interpreter's bfloat16 on the CPU only")
def test_bfloat16_state_rounds_once_then_casts(nf4):
    """A bfloat16 quant state (a model loaded in bf16) under Triton's interpreter: its bf16 cast truncates (on CUDA
    it rounds to nearest, and the test above is exact), so the result is the fp32 dequantization truncated to bf16,
    within one bf16 ulp of bitsandbytes'."""
    packed, state = quantized((48, 96), 64, True, dtype=torch.bfloat16)
    expected = bnb_dequantize(packed, state).float()
    state.dtype = torch.float32
    fp32 = bnb_dequantize(packed, state)
    state.dtype = torch.bfloat16
    got = nf4.dequantize_nf4(packed, state, torch.float32)
    assert torch.equal(got, (fp32.view(torch.int32) & ~0xFFFF).view(torch.float32))
    torch.testing.assert_close(got, expected, rtol=2**-7, atol=0)


def test_out_is_written_in_place(nf4):
    packed, state = quantized((40, 64), 64, True)
    out = torch.full((40, 64), float("nan"), device=DEVICE)
    got = nf4.dequantize_nf4(packed, state, torch.float32, out=out)
    assert got.data_ptr() == out.data_ptr()
    assert torch.equal(out, bnb_dequantize(packed, state))
    with pytest.raises(ValueError):
        nf4.dequantize_nf4(packed, state, torch.float32, out=torch.empty(64, 40, device=DEVICE))


def test_other_storage_dtype_is_read_as_bytes(nf4):
    """Params4bit with bnb_4bit_quant_storage other than uint8 holds the same bytes under another dtype."""
    packed, state = quantized((32, 64), 64, True)
    as_half = packed.reshape(-1).view(torch.float16).unsqueeze(1)
    assert torch.equal(nf4.dequantize_nf4(as_half, state, torch.float32),
                       bnb_dequantize(packed, state))


def test_fp4_and_odd_states_are_left_to_bitsandbytes(nf4):
    _, fp4 = quantized((32, 64), 64, True, quant_type="fp4")
    assert not nf4.supports(fp4)
    with pytest.raises(ValueError):
        nf4.dequantize_nf4(torch.zeros(1024, 1, dtype=torch.uint8, device=DEVICE), fp4, torch.float32)
    _, state = quantized((32, 64), 64, False)
    state.blocksize = 48
    assert not nf4.supports(state)


@pytest.mark.parametrize("shape", [(5, 7), (33, 70)])
@pytest.mark.parametrize("dtype", OUT_DTYPES)
@pytest.mark.parametrize("shift", [0, 1])
def test_nothing_is_written_outside_out(nf4, monkeypatch, shape, dtype, shift):
    """The kernel stores two elements a word; an odd count (its last byte holds one element) and an out one element
    off the word's alignment (``shift``) take the element-wise stores: either way the values are bitsandbytes' and
    the elements around ``out`` in a larger buffer keep their sentinel."""
    kernel, pairs = nf4._dequantize_nf4_kernel, []

    class Recorded:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: pairs.append(kwargs["PAIRS"]) or kernel[grid](*args, **kwargs)

    monkeypatch.setattr(nf4, "_dequantize_nf4_kernel", Recorded())
    packed, state = quantized(shape, 64, True)
    n = shape[0] * shape[1]
    expected = bnb_dequantize(packed, state).to(dtype)
    buffer = torch.full((n + 8,), -7.0, dtype=dtype, device=DEVICE)
    out = buffer[shift:shift + n].view(shape)
    assert (out.data_ptr() % (2 * dtype.itemsize) == 0) == (shift == 0)
    assert nf4.dequantize_nf4(packed, state, dtype, out=out).data_ptr() == out.data_ptr()
    assert pairs == [n % 2 == 0 and shift == 0]
    assert torch.equal(out, expected)
    assert torch.equal(buffer[:shift], torch.full((shift,), -7.0, dtype=dtype, device=DEVICE))
    assert torch.equal(buffer[shift + n:], torch.full((8 - shift,), -7.0, dtype=dtype, device=DEVICE))
