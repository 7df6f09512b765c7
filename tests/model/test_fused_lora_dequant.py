"""fused_lora.DEQUANTIZE_IN_ONE_KERNEL: the fused path on 4-bit bases dequantized by nf4_dequant's kernel gives
peft's loss and every gradient (the checks of tests/model/test_fused_lora.py), and the kernel is the one called."""

import os

import pytest
import torch

from lightning_review.model import fused_lora
from tests.model import test_fused_lora as reference  # the module, so that pytest does not collect its tests twice

pytest.importorskip("triton")


@pytest.mark.parametrize("device", reference.DEVICES)
def test_the_one_kernel_dequantization_is_peft(tiny_llama_dir, monkeypatch, device):
    assert device == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
    from lightning_review.model import nf4_dequant

    calls = []
    real = nf4_dequant.dequantize_nf4
    monkeypatch.setattr(nf4_dequant, "dequantize_nf4", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(fused_lora, "DEQUANTIZE_IN_ONE_KERNEL", True)
    reference.test_same_loss_and_gradients_as_peft(tiny_llama_dir, device, True, 0.3, True)
    # forward, the checkpoint's recomputation (down_proj's base skipped) and backward: 7 + 6 + 7 a layer, 2 layers
    assert len(calls) == 2 * (7 + 6 + 7)
