"""What ``auto`` runs: the backend a user gets without choosing, for each device, row width and dtype."""

import pytest
import torch

from lightning_review.errors import UserError
from lightning_review.model import attention
from lightning_review.model.attention import GROUPED_FROM_TOKENS, flash_varlen_runs_on, resolve_backend, s2_attention

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


@pytest.mark.parametrize("seq", [8192, 16384, 32768])
@pytest.mark.parametrize("device", [CPU, CUDA])
def test_grouped_from_8k_tokens_on_every_device(seq, device):
    assert resolve_backend("auto", device, seq, torch.bfloat16) == "grouped"


@pytest.fixture
def flash_gpu(monkeypatch):
    """A GPU that torch's flash varlen kernels run on (an A100 or later), whatever this machine has."""
    monkeypatch.setattr(attention, "flash_varlen_runs_on", lambda device: device.type == "cuda")


@pytest.mark.parametrize("seq", [1024, 4096, 7936, GROUPED_FROM_TOKENS - 1])
def test_below_8k_on_cuda_half_precision_takes_varlen_which_compiles_nothing(flash_gpu, seq):
    """Rows at their documents' width change width each step: flex compiled every new width (session 15)."""
    assert resolve_backend("auto", CUDA, seq, torch.bfloat16) == "varlen"
    assert resolve_backend("auto", CUDA, seq, torch.float16) == "varlen"


def test_below_8k_on_cuda_float32_takes_flex_since_flash_kernels_take_half_precision_only(flash_gpu):
    assert resolve_backend("auto", CUDA, 4096, torch.float32) == "flex"


def test_below_8k_on_a_gpu_without_flash_kernels_takes_flex(monkeypatch):
    monkeypatch.setattr(attention, "flash_varlen_runs_on", lambda device: False)
    assert resolve_backend("auto", CUDA, 4096, torch.float16) == "flex"


@pytest.mark.parametrize("capability, cuda_version, runs", [((7, 5), "12.8", False), ((8, 0), "12.8", True),
                                                            ((9, 0), "13.0", True), ((9, 0), None, False)])
def test_flash_varlen_needs_an_nvidia_gpu_of_capability_8(monkeypatch, capability, cuda_version, runs):
    """A T4 (7.5) or a V100 keeps flex; an A100 (8.0) or an H100/H200 (9.0) takes varlen; ROCm (no CUDA version)
    keeps flex."""
    monkeypatch.setattr(torch.version, "cuda", cuda_version)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    flash_varlen_runs_on.cache_clear()
    try:
        assert flash_varlen_runs_on(CUDA) is runs
        assert flash_varlen_runs_on(CPU) is False
    finally:
        flash_varlen_runs_on.cache_clear()


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
