"""Activation checkpointing through the API transformers keeps: 5.24 deprecates gradient_checkpointing_enable and
is_gradient_checkpointing (FutureWarnings, gone in v6), 5.17 (the GPU machines', the lowest supported) has only
gradient_checkpointing_enable."""

import warnings

import pytest

from lightning_review import LongQLoRAModule
from lightning_review.model.loading import decoder_layers
from lightning_review.training.module import enable_checkpointing


@pytest.mark.parametrize("adapter", [False, True])
def test_a_checkpointed_build_warns_nothing_about_deprecated_checkpointing(tiny_llama_dir, tmp_path, adapter):
    adapter_dir = None
    if adapter:  # PeftModel.from_pretrained reads the flag too, as get_peft_model does
        source = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), quantize=False, lora_r=4, max_seq_length=256,
                                 gradient_checkpointing=False, kernels="none")
        source.build("cpu")
        adapter_dir = str(source.save_adapter(tmp_path / "adapter"))
    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), quantize=False, lora_r=4, max_seq_length=256,
                             gradient_checkpointing=True, checkpointed_layers=1, kernels="none",
                             adapter_dir=adapter_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        module.build("cpu")
    assert [layer.gradient_checkpointing for layer in decoder_layers(module.model)] == [True, False]


class OldModel:
    """transformers 5.17's checkpointing API: gradient_checkpointing_enable only."""

    def __init__(self):
        self.calls = []

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        self.calls.append(gradient_checkpointing_kwargs)


class NewModel(OldModel):
    """transformers 5.24's: activation_checkpointing_enable, the old name a deprecated alias."""

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        raise AssertionError("the deprecated name was called")

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None):
        self.calls.append(activation_checkpointing_kwargs)


@pytest.mark.parametrize("model_type", [OldModel, NewModel])
def test_checkpointing_is_non_reentrant_through_whichever_api_the_version_has(model_type):
    model = model_type()
    enable_checkpointing(model)
    assert model.calls == [{"use_reentrant": False}]
