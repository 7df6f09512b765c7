"""What ``auto`` runs: the backend a user gets without choosing, for each device, row width and dtype."""

import pytest
import torch

from lightning_review.errors import UserError
from lightning_review.model.attention import GROUPED_FROM_TOKENS, resolve_backend, s2_attention

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


@pytest.mark.parametrize("seq", [8192, 16384, 32768])
@pytest.mark.parametrize("device", [CPU, CUDA])
def test_grouped_from_8k_tokens_on_every_device(seq, device):
    assert resolve_backend("auto", device, seq, torch.bfloat16) == "grouped"


@pytest.mark.parametrize("seq", [1024, 4096, 7936, GROUPED_FROM_TOKENS - 1])
def test_below_8k_on_cuda_half_precision_takes_varlen_which_compiles_nothing(seq):
    """Rows at their documents' width change width each step: flex compiled every new width (session 15)."""
    assert resolve_backend("auto", CUDA, seq, torch.bfloat16) == "varlen"
    assert resolve_backend("auto", CUDA, seq, torch.float16) == "varlen"


def test_below_8k_on_cuda_float32_takes_flex_since_flash_kernels_take_half_precision_only():
    assert resolve_backend("auto", CUDA, 4096, torch.float32) == "flex"


def test_cpu_takes_grouped_at_every_width():
    """FlexAttention has no CPU backward and the varlen kernels are CUDA only."""
    for seq in (512, 4096, 8192):
        assert resolve_backend("auto", CPU, seq, torch.bfloat16) == "grouped"


@pytest.mark.parametrize("backend", ["grouped", "flex", "varlen", "reference"])
def test_a_named_backend_is_kept(backend):
    assert resolve_backend(backend, CUDA, 1024, torch.bfloat16) == backend


def test_an_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(UserError, match="'flash'.*auto, grouped, flex, varlen, reference"):
        resolve_backend("flash", CPU, 1024)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="flash varlen kernels")
def test_cuda_auto_rows_of_new_widths_below_8k_compile_nothing():
    """Three widths under ``auto`` in bf16: no dynamo frame is compiled (flex compiled one per width)."""
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    before = sum(counters["stats"].values())
    for seq in (1024, 1536, 2112):
        q, k, v = (torch.randn(1, 8, seq, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                   for _ in range(3))
        out = s2_attention(q, k, v, 256, [[seq - 100]], backend="auto")
        out.sum().backward()
        assert torch.isfinite(out).all()
    assert sum(counters["stats"].values()) == before
