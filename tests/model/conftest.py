"""The Triton kernel modules, compiled on CUDA and run by Triton's interpreter on the CPU (which tests/conftest.py asks
for before Triton is imported)."""

import importlib
import os

import pytest
import torch


def _triton_module(name: str):
    pytest.importorskip("triton")
    assert torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"
    return importlib.import_module(f"lightning_review.model.{name}")


@pytest.fixture
def kernels():
    """lightning_review.model.lora_kernels."""
    return _triton_module("lora_kernels")


@pytest.fixture
def nf4():
    """lightning_review.model.nf4_dequant."""
    return _triton_module("nf4_dequant")
