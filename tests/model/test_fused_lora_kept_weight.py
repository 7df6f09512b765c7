"""fused_lora.KEEP_RECOMPUTED_WEIGHT: a checkpointed layer's recomputation keeps the weights it dequantized for its
backward. Still peft's loss and every gradient (the checks of tests/model/test_fused_lora.py), and 6 fewer
dequantizations a layer, under transformers' (non-reentrant) checkpointing and activation offload's (reentrant);
layers that are not checkpointed keep nothing."""

import pytest
import torch

from lightning_review.model import fused_lora
from tests.model import test_fused_lora as reference  # the module, so that pytest does not collect its tests twice

pytest.importorskip("bitsandbytes")


def dequantizations(monkeypatch) -> list:
    """Each base weight the fused path dequantizes (fused_lora._base_weight), peft's own path not counted."""
    calls = []
    real = fused_lora._base_weight
    monkeypatch.setattr(fused_lora, "_base_weight", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


@pytest.mark.parametrize("device", reference.DEVICES)
@pytest.mark.parametrize("checkpointing", [True, "offload"])
def test_kept_weights_give_peft_with_fewer_dequantizations(tiny_llama_dir, monkeypatch, device, checkpointing):
    calls = dequantizations(monkeypatch)
    monkeypatch.setattr(fused_lora, "KEEP_RECOMPUTED_WEIGHT", True)
    reference.test_same_loss_and_gradients_as_peft(tiny_llama_dir, device, True, 0.3, checkpointing)
    # forward (7 a layer), recomputation (6: down_proj's base is skipped) and backward (down_proj's only), 2 layers;
    # without the kept weights 2 * (7 + 6 + 7)
    assert len(calls) == 2 * (7 + 6 + 1)


def test_switched_off_the_backward_dequantizes_again(tiny_llama_dir, monkeypatch):
    calls = dequantizations(monkeypatch)
    monkeypatch.setattr(fused_lora, "KEEP_RECOMPUTED_WEIGHT", False)
    reference.test_same_loss_and_gradients_as_peft(tiny_llama_dir, "cpu", True, 0.3, True)
    assert len(calls) == 2 * (7 + 6 + 7)


def test_without_checkpointing_the_backward_dequantizes_and_nothing_is_kept(tiny_llama_dir, monkeypatch):
    calls = dequantizations(monkeypatch)
    monkeypatch.setattr(fused_lora, "KEEP_RECOMPUTED_WEIGHT", True)
    kept = []
    real_save = torch.autograd.function.FunctionCtx.save_for_backward

    def recording(ctx, *tensors):
        kept.append(tensors[-1])
        return real_save(ctx, *tensors)

    monkeypatch.setattr(torch.autograd.function.FunctionCtx, "save_for_backward", recording)
    reference.test_same_loss_and_gradients_as_peft(tiny_llama_dir, "cpu", True, 0.0, False)
    ours = [t for t in kept if t is not None and t.dim() == 2]
    assert len(ours) == 2 * 7 and all(fused_lora._is_no_weight(t) for t in ours)  # placeholders, no memory
    assert len(calls) == 2 * (7 + 7)  # forward and backward, as without the kept weights
