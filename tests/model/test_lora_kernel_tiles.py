"""The dropout kernels' launch shapes (lora_kernels.Tiles): a split of the columns in ``dropout(x) A^T``, and any
number of programs per SM for lora_A's gradient, give what torch gives under the same mask."""

import pytest
import torch

pytest.importorskip("triton")
CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"


def _inputs(kernels, rows=70, cols=200, rank=12, p=0.3):
    torch.manual_seed(0)
    x, a = torch.randn(rows, cols, device=DEVICE), torch.randn(rank, cols, device=DEVICE)
    grad_down = torch.randn(rows, rank, device=DEVICE)
    seed = kernels.new_seed(x.device)
    kept = kernels.dropout_mask(seed, (rows, cols), p) * kernels.threshold_and_scale(p)[1]
    return x, a, grad_down, seed, kept, p


@pytest.mark.parametrize("splits", [2, 3, 50])
def test_down_with_its_columns_split_adds_every_part(kernels, splits):
    """200 columns in tiles of 32: 2 or 3 parts, or more parts asked for than tiles (each part one tile)."""
    x, a, _, seed, kept, p = _inputs(kernels)
    tiles = kernels.Tiles(rows=32, cols=32, splits=splits)
    out = kernels.dropout_lora_down(x, a, seed, p, tiles=tiles)
    assert out.dtype == x.dtype and out.shape == (70, 12)
    torch.testing.assert_close(out, (x * kept) @ a.T, rtol=1e-4, atol=1e-4)


def test_a_gradient_is_the_same_for_any_programs_per_sm(kernels):
    x, _, grad_down, seed, kept, p = _inputs(kernels, rows=300, cols=64)
    for per_sm in (1, 8):
        got = kernels.dropout_lora_a_grad(grad_down, x, seed, p, tiles=kernels.Tiles(rows=32, cols=64, splits=per_sm))
        torch.testing.assert_close(got, grad_down.T @ (x * kept), rtol=1e-4, atol=1e-4)
