"""The fused path's per-layer plan (fused_lora._layer_plan): what it looks up once is looked up again when a module
it holds is replaced, and what may change between calls (a dropout's p, a bias, a base weight made trainable, the
active adapter) is read at each call: the output stays peft's."""

import pytest
import torch

from lightning_review.model import fused_lora

pytest.importorskip("bitsandbytes")


def _layer(tiny_llama_dir, dropout: float, quantize: bool = True):
    from tests.training.test_module import make_module

    module = make_module(tiny_llama_dir, quantize=quantize, lora_dropout=dropout)
    module.build("cpu")
    module.model.train()
    layer = next(m for m in module.model.modules() if type(m).__name__.startswith("Fused"))
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    return module, layer


def _fused_and_peft(layer, x):
    """(the fused path's output, peft's forward's), each from the same generator state."""
    torch.manual_seed(5)
    fused = fused_lora._fused_forward(layer, x)
    torch.manual_seed(5)
    peft = type(layer).__mro__[1].forward(layer, x)
    return fused, peft


def test_a_replaced_lora_a_is_used_not_the_planned_one(tiny_llama_dir):
    _, layer = _layer(tiny_llama_dir, 0.0)
    x = torch.randn(2, 5, layer.in_features)
    before, _ = _fused_and_peft(layer, x)
    old = layer.lora_A["default"]
    replacement = torch.nn.Linear(old.in_features, old.out_features, bias=False)
    with torch.no_grad():
        replacement.weight.copy_(old.weight * 3)
    layer.lora_A["default"] = replacement
    fused, peft = _fused_and_peft(layer, x)
    assert fused is not None and not torch.allclose(fused, before)
    torch.testing.assert_close(fused, peft)


def test_a_changed_dropout_p_is_read_at_each_call(tiny_llama_dir):
    _, layer = _layer(tiny_llama_dir, 0.3)
    x = torch.randn(2, 5, layer.in_features)
    first, _ = _fused_and_peft(layer, x)
    layer.lora_dropout["default"].p = 0.9
    fused, peft = _fused_and_peft(layer, x)
    torch.testing.assert_close(fused, peft)
    assert not torch.allclose(fused, first)


def test_a_bias_added_or_a_trainable_base_leaves_the_call_to_peft(tiny_llama_dir):
    _, layer = _layer(tiny_llama_dir, 0.0)
    x = torch.randn(2, 5, layer.in_features)
    assert fused_lora._fused_forward(layer, x) is not None
    lora_b = layer.lora_B["default"]
    lora_b.bias = torch.nn.Parameter(torch.zeros(lora_b.out_features))
    assert fused_lora._fused_forward(layer, x) is None
    lora_b.bias = None
    assert fused_lora._fused_forward(layer, x) is not None
    _, plain = _layer(tiny_llama_dir, 0.0, quantize=False)  # a 4-bit weight cannot be trained
    assert fused_lora._fused_forward(plain, x) is not None
    plain.get_base_layer().weight.requires_grad_(True)
    assert fused_lora._fused_forward(plain, x) is None


def test_another_active_adapter_gets_its_own_plan(tiny_llama_dir):
    from peft import LoraConfig

    module, layer = _layer(tiny_llama_dir, 0.0)
    x = torch.randn(2, 5, layer.in_features)
    default, _ = _fused_and_peft(layer, x)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj",
                                                                            "o_proj", "gate_proj", "up_proj",
                                                                            "down_proj"])
    module.model.add_adapter("other", config)
    module.model.set_adapter("other")
    with torch.no_grad():
        layer.lora_B["other"].weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    other, peft = _fused_and_peft(layer, x)
    assert other is not None and other.shape == default.shape
    torch.testing.assert_close(other, peft)
    assert not torch.allclose(other, default)
    module.model.set_adapter("default")
    again, _ = _fused_and_peft(layer, x)
    torch.testing.assert_close(again, default)
