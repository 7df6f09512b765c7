"""The ``generate`` adapter path loads its adapter without peft's read of transformers' deprecated
``is_gradient_checkpointing`` reaching the user as a FutureWarning (transformers 5.24, peft 0.21.2)."""

import warnings

import pytest

from lightning_review.generation.local import load_generation_model


@pytest.mark.parametrize("quantize", [False, True])
def test_an_adapter_loads_for_generation_without_a_future_warning(adapter_dir, quantize):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        model, _ = load_generation_model(adapter_dir=str(adapter_dir), dtype="float32", device="cpu",
                                         quantize=quantize)
    assert not model.training
