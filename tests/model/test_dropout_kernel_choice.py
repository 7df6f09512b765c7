"""``model.lora_dropout_kernel``: what ``auto`` resolves to, and a bad value named before the model loads."""

from pathlib import Path

import pytest
import torch

import lightning_review.model.fused_lora as fused_lora
from lightning_review.errors import UserError
from lightning_review.model.fused_lora import resolve_dropout_kernel


@pytest.mark.parametrize("installed", [True, False])
def test_auto_draws_masks_in_kernels_on_cuda_with_triton_only(monkeypatch, installed):
    real_find_spec = fused_lora.importlib.util.find_spec
    monkeypatch.setattr(fused_lora.importlib.util, "find_spec",
                        lambda name: (real_find_spec("torch") if installed else None) if name == "triton"
                        else real_find_spec(name))
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # auto never takes the interpreter: it is for tests, and slow
    assert resolve_dropout_kernel("auto", torch.device("cuda")) is installed
    assert resolve_dropout_kernel("auto", torch.device("cpu")) is False
    assert resolve_dropout_kernel("torch", torch.device("cuda")) is False
    if not installed:
        with pytest.raises(UserError, match=r"Triton is not installed.*torch or auto"):
            resolve_dropout_kernel("triton", torch.device("cuda"))


def test_a_bad_value_is_named_before_the_model_loads(tiny_llama_dir):
    from lightning_review.training.module import LongQLoRAModule

    with pytest.raises(UserError, match=r"model\.lora_dropout_kernel must be one of torch, triton, auto, got 'cuda'"):
        LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), fused_lora=False, lora_dropout_kernel="cuda")
    # auto without the fused path is torch's dropout, not a contradiction
    LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), fused_lora=False, lora_dropout_kernel="auto",
                    max_seq_length=256)


def test_the_gpu_configs_ask_for_auto():
    import yaml

    for name in ("7b", "13b"):
        with open(Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml") as f:
            assert yaml.safe_load(f)["model"]["lora_dropout_kernel"] == "auto", name
