"""fused_lora.KEEP_LORA_DOWN: a checkpointed layer's recomputation takes the ``dropout(x) A^T`` its forward computed,
where that leaves the random generator as the forward left it (no dropout here; the dropout kernels' case is in
tests/model/test_lora_kernels.py). Still peft's loss and every gradient; computed again where taking it could be
wrong (two forwards at one generator position, lora_A changed in place between forward and backward); nothing held
after the backward."""

import pytest
import torch

from lightning_review.model import fused_lora
from tests.model import test_fused_lora as reference  # the module, so that pytest does not collect its tests twice

pytest.importorskip("bitsandbytes")


def taken(monkeypatch) -> list:
    """Each recomputation that took its forward's product (True) or computed it again (False)."""
    results = []
    real = fused_lora._KeptDowns.take

    def recording(self, *args):
        down = real(self, *args)
        results.append(down is not None)
        return down

    monkeypatch.setattr(fused_lora._KeptDowns, "take", recording)
    return results


def _batches():
    from lightning_review.data.packing import collate_rows
    from tests.model.test_loss import with_prompt

    return [collate_rows([[with_prompt(60, 45, seed)]], pad_id=0, row_length=64) for seed in (1, 2)]


def _module(tiny_llama_dir, **settings):
    from lightning_review.training.module import LongQLoRAModule

    torch.manual_seed(0)
    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=8, max_seq_length=256, s2_group_size=16,
                             kernels="none", quantize=True, gradient_checkpointing=True, **settings)
    module.build("cpu")
    with torch.no_grad():  # lora_B starts at zero, which would hide a wrong lora_A gradient
        for name, param in module.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02, generator=torch.Generator().manual_seed(len(name)))
    module.train()
    return module


def _grads(module) -> dict:
    return {n: p.grad.clone() for n, p in module.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("checkpointing", [True, "offload"])
def test_without_dropout_the_recomputation_takes_each_product_and_is_peft(tiny_llama_dir, monkeypatch, checkpointing):
    results = taken(monkeypatch)
    reference.test_same_loss_and_gradients_as_peft(tiny_llama_dir, "cpu", True, 0.0, checkpointing)
    if checkpointing == "offload":  # reentrant: the forward runs without a graph, so nothing is kept
        assert results == [False] * 14
    else:
        assert results == [True] * 14  # 2 layers of 7 projections


def test_under_torchs_dropout_the_recomputation_draws_and_computes_again(tiny_llama_dir, monkeypatch):
    """Skipping torch's draw would leave the generator elsewhere, and the next masks with it."""
    results = taken(monkeypatch)
    reference.test_same_loss_and_gradients_as_peft(tiny_llama_dir, "cpu", True, 0.3, True)
    assert results == []


def _forwards_then_backward(tiny_llama_dir, keep: bool, forwards: int, change_lora_a: bool = False) -> dict:
    """Gradients after ``forwards`` forwards (of different rows) and one backward of their sum; with lora_A changed
    in place between the forwards and the backward when asked."""
    fused_lora.KEEP_LORA_DOWN = keep  # restored by the test's monkeypatch
    module = _module(tiny_llama_dir, lora_dropout=0.0)
    loss = sum(module(batch) for batch in _batches()[:forwards])  # the generator does not move: one position
    if change_lora_a:
        with torch.no_grad():
            for name, param in module.model.named_parameters():
                if "lora_A" in name:
                    param.mul_(1.5)
    loss.backward()
    return _grads(module)


def _assert_same(grads: dict, expected: dict) -> None:
    assert set(grads) == set(expected)
    for name, grad in expected.items():
        torch.testing.assert_close(grads[name], grad, msg=name)


def test_two_forwards_at_one_generator_position_are_computed_again(tiny_llama_dir, monkeypatch):
    monkeypatch.setattr(fused_lora, "KEEP_LORA_DOWN", True)
    expected = _forwards_then_backward(tiny_llama_dir, keep=False, forwards=2)
    results = taken(monkeypatch)
    grads = _forwards_then_backward(tiny_llama_dir, keep=True, forwards=2)
    assert len(results) == 28 and not any(results)  # either forward's product would pass for the other's
    _assert_same(grads, expected)


def test_lora_a_changed_in_place_before_the_backward_is_computed_again(tiny_llama_dir, monkeypatch):
    """The recomputation uses the changed weight, as checkpointing always did, not the forward's stale product."""
    monkeypatch.setattr(fused_lora, "KEEP_LORA_DOWN", True)
    expected = _forwards_then_backward(tiny_llama_dir, keep=False, forwards=1, change_lora_a=True)
    results = taken(monkeypatch)
    grads = _forwards_then_backward(tiny_llama_dir, keep=True, forwards=1, change_lora_a=True)
    assert results == [False] * 14
    _assert_same(grads, expected)
    unchanged = _forwards_then_backward(tiny_llama_dir, keep=False, forwards=1)
    assert any(not torch.allclose(unchanged[n], expected[n]) for n in expected)  # the change shows at all


def test_nothing_is_held_after_the_backward(tiny_llama_dir, monkeypatch):
    monkeypatch.setattr(fused_lora, "KEEP_LORA_DOWN", True)
    module = _module(tiny_llama_dir, lora_dropout=0.0)
    layers = [m for m in module.model.modules() if type(m).__name__.startswith("Fused")]
    loss = module(_batches()[0])
    held = [ref() for layer in layers for ref in layer._kept_downs._by_position.values()]
    assert len(held) == 14 and all(kept.down is not None for kept in held)
    loss.backward()
    assert all(kept.down is None for kept in held)
    import copy
    import pickle

    assert copy.deepcopy(layers[0])._kept_downs._by_position == {}
    assert pickle.loads(pickle.dumps(layers[0]._kept_downs))._by_position == {}
