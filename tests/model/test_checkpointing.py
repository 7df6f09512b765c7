"""Partial gradient checkpointing (model.checkpointed_layers): only the first layers recompute, keeping nothing but
their input for backward, the result is the same, and the setting is validated."""

import pytest
import torch

from lightning_review.model.loading import decoder_layers
from lightning_review.training.module import LongQLoRAModule, limit_checkpointed_layers
from tests.model.test_offload import forward_saving, loss_and_grads
from tests.model.test_loss import with_prompt
from lightning_review.data.packing import collate_rows


def checkpointed(module) -> list[bool]:
    return [layer.gradient_checkpointing for layer in decoder_layers(module.model)]


def test_only_the_first_layers_are_checkpointed(tiny_llama_dir):
    from tests.training.test_module import make_module

    module = make_module(tiny_llama_dir, quantize=False, gradient_checkpointing=True, checkpointed_layers=1)
    assert checkpointed(module) == [True, False]
    assert checkpointed(make_module(tiny_llama_dir, quantize=False, gradient_checkpointing=True)) == [True, True]
    none = make_module(tiny_llama_dir, quantize=False, gradient_checkpointing=True, checkpointed_layers=0)
    assert checkpointed(none) == [False, False]
    assert limit_checkpointed_layers(none.model, None) == 0  # nothing turns checkpointing back on


@pytest.mark.parametrize("count", [0, 1])
def test_partial_checkpointing_gives_the_same_loss_and_gradients(tiny_llama_dir, count):
    """With LoRA dropout: the recomputed layer must draw the same masks as its forward did."""
    batch = collate_rows([[with_prompt(60, 45, 1), with_prompt(40, 30, 2)]], pad_id=0, row_length=128)
    reference, ref_grads = loss_and_grads(tiny_llama_dir, batch)
    loss, grads = loss_and_grads(tiny_llama_dir, batch, checkpointed_layers=count)
    torch.testing.assert_close(loss, reference)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_a_checkpointed_layer_keeps_only_its_input_for_backward(tiny_llama_dir, monkeypatch):
    """The memory claim, measured by what the autograd graph saves (saved_tensors_hooks) with 0, 1 and 2 of the two
    layers checkpointed. In bf16, as training on a GPU computes: in float32 an uncheckpointed layer's RMSNorm saves
    the layer input itself (its cast to float32 is no copy), which would blur "its input stays"."""
    import lightning_review.training.module as mod
    from tests.training.test_module import make_module

    real = mod.load_llama
    monkeypatch.setattr(mod, "load_llama", lambda *a, **k: real(*a, **{**k, "dtype": torch.bfloat16}))

    batch = collate_rows([[with_prompt(60, 45, 1), with_prompt(40, 30, 2)]], pad_id=0, row_length=128)
    saved = []
    for count in (0, 1, 2):
        module = make_module(tiny_llama_dir, quantize=False, gradient_checkpointing=True, checkpointed_layers=count)
        module.train()
        saved.append(forward_saving(module, batch)[1])
    assert [s.inputs_saved() for s in saved] == [[False, False], [True, False], [True, True]]
    layer_input = saved[0].layer_inputs[0].numel() * saved[0].layer_inputs[0].element_size()
    for more, fewer in zip(saved, saved[1:]):  # each checkpointed layer: its activations go, its input stays
        assert len(more.activations) - len(fewer.activations) > 20
        assert more.bytes - fewer.bytes > 10 * layer_input


def test_offload_applies_to_the_checkpointed_layers_only(tiny_llama_dir):
    from lightning_review.model.offload import host_checkpoint
    from tests.training.test_module import make_module

    module = make_module(tiny_llama_dir, quantize=False, gradient_checkpointing=True, checkpointed_layers=1,
                         activation_offload=True)
    layers = module.model.get_base_model().model.layers
    assert layers[0]._gradient_checkpointing_func is host_checkpoint
    assert layers[1]._gradient_checkpointing_func is not host_checkpoint


def test_bad_counts_are_refused(tiny_llama_dir):
    from tests.training.test_module import make_module

    with pytest.raises(ValueError, match="checkpointed_layers must be >= 0"):
        LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), checkpointed_layers=-1)
    with pytest.raises(ValueError, match="checkpointed_layers=5, but the model has 2 decoder layers"):
        make_module(tiny_llama_dir, quantize=False, gradient_checkpointing=True, checkpointed_layers=5)
