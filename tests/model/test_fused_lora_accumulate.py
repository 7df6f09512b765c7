"""fused_lora.ACCUMULATE_IN_BASE, either way: the LoRA product written first and the base matmul accumulated into it
(the default), or the LoRA product added into the base output, gives peft's loss and gradients (the checks of
tests/model/test_fused_lora.py), a base bias included."""

import pytest
import torch

from lightning_review.model import fused_lora
from tests.model import test_fused_lora as reference  # the module, so that pytest does not collect its tests twice


@pytest.mark.parametrize("device", reference.DEVICES)
@pytest.mark.parametrize("quantize,dropout,checkpointing", [(True, 0.3, True), (False, 0.3, False)])
def test_adding_after_the_base_matmul_is_peft(tiny_llama_dir, monkeypatch, device, quantize, dropout,
                                              checkpointing):
    monkeypatch.setattr(fused_lora, "ACCUMULATE_IN_BASE", False)
    reference.test_same_loss_and_gradients_as_peft(tiny_llama_dir, device, quantize, dropout, checkpointing)


@pytest.mark.parametrize("accumulate", [False, True])
def test_a_base_with_bias_adds_it_once(monkeypatch, accumulate):
    """A plain Linear base with a bias, outside any model: output and gradients against the unfused formula."""
    from peft import LoraConfig, get_peft_model

    monkeypatch.setattr(fused_lora, "ACCUMULATE_IN_BASE", accumulate)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 24, bias=True))
    net[0].bias.data.normal_()
    model = get_peft_model(net, LoraConfig(r=4, lora_alpha=8, target_modules=["0"], lora_dropout=0.0))
    layer = model.base_model.model[0]
    torch.nn.init.normal_(layer.lora_B["default"].weight)
    x = torch.randn(3, 5, 16, requires_grad=True)
    expected = layer(x)
    expected.square().sum().backward()
    grads = (x.grad.clone(), layer.lora_A["default"].weight.grad.clone())
    x.grad = None
    layer.lora_A["default"].weight.grad = None
    assert fused_lora.use_fused_lora(model) == 1
    out = layer(x)
    out.square().sum().backward()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad, grads[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.lora_A["default"].weight.grad, grads[1], rtol=1e-5, atol=1e-5)
