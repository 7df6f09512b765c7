"""Llama-2 7B/13B-shaped checkpoints with random weights, built on the machine (never downloaded), and synthetic
paper->review data of the seed's lengths. Shared by the GPU benchmarks."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

SHAPES = {
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32),
    "13b": dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40,
                num_key_value_heads=40),
    "small": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=4),  # a CPU check of the scripts, not a measurement
}


def llama_config(shape: str):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5, **SHAPES[shape])


def random_llama_checkpoint(shape: str, directory: Path, device: str = "cuda") -> Path:
    """A Hugging Face checkpoint directory (bf16 safetensors, config, the built-in tokenizer) of random weights."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    from lightning_review.artifacts.model_sources import TINY_LLAMA, resolve

    directory = Path(directory)
    if (directory / "config.json").is_file():
        return directory
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(llama_config(shape)).to(torch.bfloat16)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(resolve(TINY_LLAMA)).save_pretrained(directory)
    del model
    torch.cuda.empty_cache()
    return directory


def synthetic_reviews(path: Path, tokenizer, n: int, paper_tokens: int, review_tokens: int, seed: int = 0) -> Path:
    """``n`` pairs whose paper and review are about ``paper_tokens`` / ``review_tokens`` long under ``tokenizer``."""
    rng = random.Random(seed)
    words = [w.lstrip("Ġ▁") for w in tokenizer.get_vocab() if w.lstrip("Ġ▁").isalpha()]

    def text(tokens: int) -> str:
        out, count = [], 0
        while count < tokens:
            chunk = " ".join(rng.choice(words) for _ in range(200))
            out.append(chunk)
            count += len(tokenizer(chunk, add_special_tokens=False)["input_ids"])
        return " ".join(out)

    with Path(path).open("w") as f:
        for i in range(n):
            jitter = rng.uniform(0.8, 1.0)
            f.write(json.dumps({"id": f"p{i}", "paper": text(int(paper_tokens * jitter)),
                                "review": text(review_tokens)}) + "\n")
    return Path(path)
