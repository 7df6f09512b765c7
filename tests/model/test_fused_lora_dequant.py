"""fused_lora.DEQUANTIZE_IN_ONE_KERNEL: the fused path on 4-bit bases dequantized by nf4_dequant's kernel gives
peft's loss and every gradient (the checks of tests/model/test_fused_lora.py), and the kernel is the one called."""

import pytest
import torch

from lightning_review.model import fused_lora
from tests.model import test_fused_lora as reference  # the module, so that pytest does not collect its tests twice

pytest.importorskip("triton")


@pytest.mark.parametrize("device", reference.TRITON_DEVICES)
def test_the_one_kernel_dequantization_is_peft(tiny_llama_dir, monkeypatch, device):
    from lightning_review.model import nf4_dequant

    calls = []
    real = nf4_dequant.dequantize_nf4
    monkeypatch.setattr(nf4_dequant, "dequantize_nf4", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(fused_lora, "DEQUANTIZE_IN_ONE_KERNEL", "always")
    reference.test_same_loss_and_gradients_as_peft(tiny_llama_dir, device, True, 0.3, True)
    # forward, the checkpoint's recomputation (down_proj's base skipped) and backward (only down_proj's: the others
    # use the weights their recomputation kept, KEEP_RECOMPUTED_WEIGHT): 7 + 6 + 1 a layer, 2 layers
    assert len(calls) == 2 * (7 + 6 + 1)


def test_the_kernel_dequantizes_on_cuda_only_or_never(monkeypatch):
    """"cuda" (the default) leaves a CPU weight to bitsandbytes even where Triton's interpreter could run the kernel
    (it is slow there); "never" leaves every weight to bitsandbytes."""
    bnb_functional = pytest.importorskip("bitsandbytes.functional")
    from lightning_review.model import nf4_dequant

    calls = []
    monkeypatch.setattr(nf4_dequant, "dequantize_nf4", lambda *a, **k: calls.append(1))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    assert fused_lora.DEQUANTIZE_IN_ONE_KERNEL == "cuda"
    for setting in ("cuda", "never"):
        monkeypatch.setattr(fused_lora, "DEQUANTIZE_IN_ONE_KERNEL", setting)
        for device in devices:
            weight = torch.randn(16, 64, device=device)
            packed, state = bnb_functional.quantize_4bit(weight, blocksize=64, quant_type="nf4")
            base = torch.nn.Module()
            base.weight = torch.nn.Parameter(packed, requires_grad=False)
            base.weight.quant_state = state
            expected = bnb_functional.dequantize_4bit(packed, state).to(torch.float32)
            calls.clear()
            got = fused_lora._base_weight(base, torch.float32)
            on_kernel = setting == "cuda" and device == "cuda"
            assert calls == ([1] if on_kernel else []), (setting, device)
            if not on_kernel:
                assert torch.equal(got, expected)


def test_a_setting_that_is_not_one_of_the_three_is_refused(monkeypatch):
    """``set.fused_lora.DEQUANTIZE_IN_ONE_KERNEL=true`` (a boolean, as before session 12) would otherwise match no
    setting and silently time bitsandbytes' path."""
    monkeypatch.setattr(fused_lora, "DEQUANTIZE_IN_ONE_KERNEL", True)
    base = torch.nn.Linear(4, 4)
    base.weight.quant_state = object()
    with pytest.raises(ValueError, match="DEQUANTIZE_IN_ONE_KERNEL must be one of .*got True"):
        fused_lora._base_weight(base, torch.float32)
