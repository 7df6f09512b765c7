"""The fused LoRA path (model.fused_lora): the same loss and every gradient as peft's own forward, on the whole
model, 4-bit and plain, with and without dropout and checkpointing; peft's forward where the fused one cannot run."""

import os

import pytest
import torch

from lightning_review.model.fused_lora import fusable_classes, use_fused_lora

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
# where Triton's kernels run: compiled on CUDA, interpreted on the CPU only under TRITON_INTERPRET=1 (tests/conftest.py
# sets it where there is no GPU)
TRITON_DEVICES = [d for d in DEVICES if d == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"]


def loss_and_grads(tiny_llama_dir, batch, device="cpu", **kw):
    from lightning_review.training.module import LongQLoRAModule

    torch.manual_seed(0)
    settings = dict(checkpoint_dir=str(tiny_llama_dir), lora_r=8, max_seq_length=256, s2_group_size=16,
                    gradient_checkpointing=False, kernels="none")
    module = LongQLoRAModule(**{**settings, **kw})
    module.build(device)
    with torch.no_grad():  # lora_B starts at zero, which would hide a wrong lora_A gradient
        for name, param in module.model.named_parameters():
            if "lora_B" in name:
                values = torch.randn(param.shape, generator=torch.Generator().manual_seed(len(name))) * 0.02
                param.copy_(values)
    module.train()
    torch.manual_seed(1)  # the same dropout masks in both runs, when drawn at the same points
    if device == "cuda":
        torch.cuda.manual_seed(1)
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
        loss = module(batch)
    loss.backward()
    grads = {n: p.grad.float().clone() for n, p in module.model.named_parameters() if p.requires_grad}
    return module, loss.detach().float(), grads


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("quantize,dropout,checkpointing", [(True, 0.3, True), (True, 0.0, False),
                                                             (False, 0.3, False), (True, 0.3, "offload")])
def test_same_loss_and_gradients_as_peft(tiny_llama_dir, device, quantize, dropout, checkpointing):
    """Checkpointing: transformers' (non-reentrant) or activation offload's (reentrant), where the recomputed
    down_proj skips its base matmul."""
    from lightning_review.data.packing import collate_rows
    from tests.model.test_loss import with_prompt

    batch = collate_rows([[with_prompt(60, 45, 1), with_prompt(40, 30, 2)], [with_prompt(90, 70, 3)]], pad_id=0,
                         row_length=128)
    settings = dict(quantize=quantize, lora_dropout=dropout, gradient_checkpointing=bool(checkpointing),
                    activation_offload=checkpointing == "offload")
    _, reference, ref_grads = loss_and_grads(tiny_llama_dir, batch, device, fused_lora=False,
                                             regenerate_lora_dropout=False, **settings)
    module, loss, grads = loss_and_grads(tiny_llama_dir, batch, device, **settings)
    assert sum(type(m).__name__.startswith("Fused") for m in module.model.modules()) == 7 * 2
    exact = device == "cpu"  # float32 on the CPU; bf16 autocast on CUDA rounds the two sums differently
    torch.testing.assert_close(loss, reference, rtol=1e-5 if exact else 1e-2, atol=1e-6 if exact else 1e-2)
    assert set(grads) == set(ref_grads)
    for name, grad in ref_grads.items():
        if exact:
            torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
        else:  # relative to the gradient's size: bf16 keeps 8 bits
            error = (grads[name] - grad).norm() / grad.norm().clamp_min(1e-12)
            assert error < 3e-2, (name, float(error))
    assert any(g.abs().sum() > 0 for n, g in grads.items() if "lora_A" in n)


def test_dropout_masks_are_peft_masks_and_the_generator_moves_on_the_same(tiny_llama_dir):
    """Dropout 0.5 makes a wrong mask visible in the loss: the fused path draws peft's masks, and leaves the
    generator where peft leaves it (what the next draw gives is the same)."""
    from lightning_review.data.packing import collate_rows
    from tests.model.test_loss import with_prompt

    batch = collate_rows([[with_prompt(60, 45, 1)]], pad_id=0, row_length=64)
    results = []
    for fused in (False, True):
        _, loss, _ = loss_and_grads(tiny_llama_dir, batch, quantize=True, lora_dropout=0.5, fused_lora=fused,
                                    regenerate_lora_dropout=False)
        results.append((loss, torch.rand(3)))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    _, other, _ = loss_and_grads(tiny_llama_dir, batch, quantize=True, lora_dropout=0.0)
    assert not torch.allclose(other, results[0][0])  # the masks matter at all


def test_evaluation_and_disabled_adapters_take_peft_forward(tiny_llama_dir, monkeypatch):
    """Evaluation and generation (eval mode) and disabled adapters run peft's own forward, with the same output;
    the fused class keeps peft's adapter keys."""
    from tests.training.test_module import make_module

    module = make_module(tiny_llama_dir, quantize=True, lora_dropout=0.0)
    module.build("cpu")
    plain = make_module(tiny_llama_dir, quantize=True, lora_dropout=0.0, fused_lora=False)
    assert set(module.trainable_state_dict()) == set(plain.trainable_state_dict())
    layer = next(m for m in module.model.modules() if type(m).__name__.startswith("Fused"))
    assert isinstance(layer, fusable_classes())
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_()
    x = torch.randn(2, 5, layer.in_features, requires_grad=True)
    from lightning_review.model import fused_lora

    calls = []
    apply = fused_lora._FusedLoRA.apply
    monkeypatch.setattr(fused_lora._FusedLoRA, "apply", lambda *args: calls.append(1) or apply(*args))
    module.model.train()
    fused = layer(x)
    assert calls == [1]
    module.model.eval()
    with torch.no_grad():
        evaluated = layer(x)
    torch.testing.assert_close(fused, evaluated, rtol=1e-5, atol=1e-5)
    module.model.train()
    with module.model.disable_adapter():
        base_only = layer(x)
    assert calls == [1]  # peft's forward in eval mode and with the adapter disabled
    assert not torch.allclose(base_only, fused, atol=1e-3)
    torch.testing.assert_close(base_only, layer.get_base_layer()(x))
    assert use_fused_lora(module.model) == 0  # nothing left to switch


@pytest.mark.parametrize("offload", [False, True])
def test_a_recomputed_layer_skips_only_the_base_matmul_of_down_proj(tiny_llama_dir, monkeypatch, offload):
    """With every layer checkpointed, each base weight is used in the forward, the recomputation and the input
    gradient, except down_proj's: its recomputed output is read by no one."""
    from collections import Counter

    from lightning_review.data.packing import collate_rows
    from lightning_review.model import fused_lora
    from tests.model.test_loss import with_prompt

    calls = Counter()
    original = fused_lora._base_weight

    def counting(base, dtype):
        calls[id(base)] += 1
        return original(base, dtype)

    monkeypatch.setattr(fused_lora, "_base_weight", counting)
    monkeypatch.setattr(fused_lora, "KEEP_RECOMPUTED_WEIGHT", False)  # its own test: test_fused_lora_kept_weight.py
    batch = collate_rows([[with_prompt(60, 45, 1)]], pad_id=0, row_length=64)
    module, _, _ = loss_and_grads(tiny_llama_dir, batch, quantize=True, lora_dropout=0.1,
                                  gradient_checkpointing=True, activation_offload=offload)
    names = {id(m.get_base_layer()): name for name, m in module.model.named_modules()
             if type(m).__name__.startswith("Fused")}
    by_name = {names[key]: count for key, count in calls.items()}
    assert len(by_name) == 14
    for name, count in by_name.items():
        assert count == (2 if name.endswith("mlp.down_proj") else 3), (name, count)
