"""Rows longer than the model's positions (its max_position_embeddings times the RoPE interpolation that
model.model_max_length asks) are refused when the module is built, before the model or the data loads: the positions
beyond were never trained, and the loss does not show it."""

import re
from types import SimpleNamespace

import pytest

from lightning_review.cli import main
from lightning_review.data.datamodule import ReviewDataModule
from lightning_review.errors import UserError
from lightning_review.training.module import LongQLoRAModule
from tests.conftest import ROOT


@pytest.mark.parametrize("model_max_length, max_seq_length, positions, why", [
    (None, 1024, 256, "model.model_max_length=null asks for no RoPE scaling"),
    (128, 512, 256, "model.model_max_length=128, not above them, asks for no RoPE scaling"),
    (300, 1024, 512, "model.model_max_length=300 interpolates RoPE by 2 to 512"),  # ceil(300 / 256) = 2
])
def test_rows_beyond_the_scaled_context_are_refused(tiny_llama_dir, model_max_length, max_seq_length, positions,
                                                    why):
    with pytest.raises(UserError) as caught:
        LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), model_max_length=model_max_length,
                        max_seq_length=max_seq_length)
    message = str(caught.value)
    assert message.startswith(f"data.max_seq_length={max_seq_length} (tokens per training row; model.max_seq_length "
                              f"follows it) is longer than the model's context of {positions} positions: ")
    assert f"has 256 positions (max_position_embeddings) and {why}." in message
    assert message.endswith(f"Set model.model_max_length to at least {max_seq_length} (RoPE interpolated by "
                            f"{-(-max_seq_length // 256)}), or lower data.max_seq_length to at most {positions}")


@pytest.mark.parametrize("model_max_length, max_seq_length", [(None, 256), (512, 512), (300, 512), (1000, 1024)])
def test_rows_within_the_scaled_context_are_accepted(tiny_llama_dir, model_max_length, max_seq_length):
    LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), model_max_length=model_max_length,
                    max_seq_length=max_seq_length)


def test_fit_refuses_the_hostile_command_before_anything_loads(tmp_path, monkeypatch):
    """The CLI links data.max_seq_length to the module, so the row length of the data is the one checked."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=re.escape("error: data.max_seq_length=1024 (tokens per training row")):
        main(["fit", "-c", str(ROOT / "configs" / "demo.yaml"), "--data.max_seq_length", "1024",
              "--model.model_max_length", "null"])
    assert not (tmp_path / "runs").exists()


def test_a_datamodule_given_beside_the_module_is_held_to_the_context_too(tiny_llama_dir):
    """In a script nothing links the two row lengths: setup (before the model loads) checks the DataModule's."""
    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), max_seq_length=256)
    module._trainer = SimpleNamespace(datamodule=ReviewDataModule(tokenizer_dir=str(tiny_llama_dir),
                                                                  max_seq_length=1024))
    with pytest.raises(UserError, match=r"data.max_seq_length=1024 .* context of 256 positions"):
        module.setup("fit")
    module._trainer = SimpleNamespace(datamodule=ReviewDataModule(tokenizer_dir=str(tiny_llama_dir),
                                                                  max_seq_length=256))
    module.setup("fit")
    module._trainer = SimpleNamespace(datamodule=None)
    module.setup("fit")
