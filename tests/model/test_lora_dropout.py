"""LoRA dropout replayed in backward (model.regenerate_lora_dropout): the same outputs and gradients as dropout
followed by lora_A with the mask kept, on every layer of a peft model, with less kept for backward."""

import pytest
import torch
import torch.nn.functional as F

from lightning_review.model.lora_dropout import RegeneratedDropoutLinear, use_regenerated_lora_dropout

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("autocast", [False, True])
def test_same_output_and_gradients_as_a_kept_mask(device, autocast):
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 8, bias=False).to(device)
    x = torch.randn(3, 50, 64, device=device, dtype=torch.bfloat16 if autocast else torch.float32)
    grad = torch.randn(3, 50, 8, device=device)

    def run(fold: bool):
        a = torch.nn.Linear(64, 8, bias=False).to(device)
        a.weight.data.copy_(layer.weight)
        dropout = torch.nn.Dropout(0.3)
        if fold:
            a.__class__, a.dropout_p, dropout = RegeneratedDropoutLinear, 0.3, torch.nn.Identity()
        inp = x.clone().requires_grad_(True)
        torch.manual_seed(7)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            out = a(dropout(inp))
            after = torch.rand(4, device=device)  # what the next random draw gives
        out.backward(grad.to(out.dtype))
        return out.detach(), inp.grad, a.weight.grad, after

    reference, ref_in, ref_w, ref_after = run(False)
    out, grad_in, grad_w, after = run(True)
    assert (out == 0).float().mean() < 0.5  # dropout did not zero whole rows of the output
    torch.testing.assert_close(out, reference)
    torch.testing.assert_close(grad_in, ref_in)
    torch.testing.assert_close(grad_w, ref_w, rtol=2e-2 if autocast else 1e-5, atol=1e-2 if autocast else 1e-6)
    torch.testing.assert_close(after, ref_after)  # the generator moved on exactly as with torch's dropout
    assert float((grad_in == 0).float().mean()) == pytest.approx(0.3, abs=0.05)  # the dropped inputs get no gradient


@pytest.mark.parametrize("checkpointed_layers", [0, 1])
def test_a_model_trains_exactly_as_with_peft_dropout(tiny_llama_dir, checkpointed_layers):
    """Whole model, dropout 0.3, no layer or the first layer checkpointed (the others regenerate): the same masks
    are drawn at the same points, so loss and every gradient are those of peft's own dropout."""
    from lightning_review.data.packing import collate_rows
    from tests.model.test_loss import with_prompt
    from tests.model.test_offload import loss_and_grads

    batch = collate_rows([[with_prompt(60, 45, 1), with_prompt(40, 30, 2)]], pad_id=0, row_length=128)
    reference, ref_grads = loss_and_grads(tiny_llama_dir, batch, regenerate_lora_dropout=False, fused_lora=False)
    loss, grads = loss_and_grads(tiny_llama_dir, batch, checkpointed_layers=checkpointed_layers, fused_lora=False)
    torch.testing.assert_close(loss, reference)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_eval_mode_and_zero_dropout_are_plain_linear():
    a = torch.nn.Linear(16, 4, bias=False)
    a.__class__, a.dropout_p = RegeneratedDropoutLinear, 0.5
    x = torch.randn(5, 16)
    a.eval()
    torch.testing.assert_close(a(x), F.linear(x, a.weight))
    a.train()
    assert not torch.allclose(a(x), F.linear(x, a.weight))


def test_every_adapter_of_a_peft_model_is_switched_and_the_adapter_keys_stay(tiny_llama_dir, tmp_path):
    from tests.training.test_module import make_module

    plain = make_module(tiny_llama_dir, quantize=False, lora_dropout=0.1, regenerate_lora_dropout=False,
                        fused_lora=False)
    module = make_module(tiny_llama_dir, quantize=False, lora_dropout=0.1, fused_lora=False)
    switched = [m for m in module.model.modules() if isinstance(m, RegeneratedDropoutLinear)]
    assert len(switched) == 7 * 2  # q k v o gate up down in both layers
    assert not any(isinstance(m, torch.nn.Dropout) for m in module.model.modules())
    assert set(module.trainable_state_dict()) == set(plain.trainable_state_dict())
    assert use_regenerated_lora_dropout(module.model) == 0  # nothing left to switch
    partial = make_module(tiny_llama_dir, quantize=False, lora_dropout=0.1, gradient_checkpointing=True,
                          checkpointed_layers=1, fused_lora=False)  # the checkpointed first layer keeps peft's dropout
    layers = partial.model.get_base_model().model.layers
    assert not any(isinstance(m, RegeneratedDropoutLinear) for m in layers[0].modules())
    assert sum(isinstance(m, RegeneratedDropoutLinear) for m in layers[1].modules()) == 7
    none = make_module(tiny_llama_dir, quantize=False, lora_dropout=0.0, fused_lora=False)
    assert not any(isinstance(m, RegeneratedDropoutLinear) for m in none.model.modules())
