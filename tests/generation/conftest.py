"""A trained-looking adapter (LoRA, embeddings and norms moved away from the base) and papers of mixed lengths."""

import socket

import pytest
import torch

from lightning_review.demo import demo_records
from tests.conftest import write_jsonl
from tests.openai_server import API_KEY


@pytest.fixture(scope="session")
def adapter_dir(tiny_llama_dir, tmp_path_factory):
    from lightning_review.training.module import LongQLoRAModule

    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), model_max_length=512, quantize=False, lora_r=4,
                             max_seq_length=512)
    module.configure_model()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in module.model.named_parameters():
            if param.requires_grad:  # what training would do: every trainable weight moves
                param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    return module.save_adapter(tmp_path_factory.mktemp("generation") / "adapter")


@pytest.fixture(scope="session")
def papers_file(tmp_path_factory):
    """Five papers of different lengths, one longer than the 512-token context (it must be cut)."""
    records = demo_records(5, seed=3)
    rows = [{"id": f"p{i}", "paper": r["paper"][: 200 * (i + 1)]} for i, r in enumerate(records)]
    rows[-1]["paper"] = " ".join([records[-1]["paper"]] * 8)
    return write_jsonl(tmp_path_factory.mktemp("papers") / "papers.jsonl", rows)


@pytest.fixture()
def papers(tmp_path):
    """Three short papers (a test module with other papers defines its own)."""
    return write_jsonl(tmp_path / "papers.jsonl", [{"id": f"p{i}", "paper": f"Paper {i} studies graph diffusion."}
                                                   for i in range(3)])


@pytest.fixture()
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture()
def dead_port():
    """A port bound but not listening: a connection is refused at once, and no other program can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
