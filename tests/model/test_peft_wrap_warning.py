"""peft_reading_checkpointing_flag silences peft's read of transformers' deprecated ``is_gradient_checkpointing``
and nothing else; where transformers has no such warning (5.17) it changes nothing."""

import warnings

import pytest

from lightning_review.model.loading import add_lora, peft_reading_checkpointing_flag

MESSAGE = ("`is_gradient_checkpointing` is deprecated and will be removed in v6. Use `is_activation_checkpointing` "
           "instead.")


def test_the_deprecated_flag_read_is_silenced():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with peft_reading_checkpointing_flag():
            warnings.warn(MESSAGE, FutureWarning)


@pytest.mark.parametrize("message, category", [
    (MESSAGE, DeprecationWarning),  # the same words, another category
    ("`gradient_checkpointing_enable` is deprecated and will be removed in v6.", FutureWarning),
    ("some other FutureWarning", FutureWarning),
])
def test_every_other_warning_still_shows(message, category):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with peft_reading_checkpointing_flag(), pytest.raises(category):
            warnings.warn(message, category)


def test_the_filters_are_restored_after_the_wrap():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with peft_reading_checkpointing_flag():
            pass
        with pytest.raises(FutureWarning):
            warnings.warn(MESSAGE, FutureWarning)


def test_add_lora_warns_nothing_about_deprecated_checkpointing(tiny_llama_dir):
    from lightning_review.model.loading import load_llama

    base = load_llama(tiny_llama_dir, quantize=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        add_lora(base, r=4)
