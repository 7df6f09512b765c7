"""Built-in assets so that the demo runs on a fresh CPU machine with no downloads.

``builtin:tiny-llama`` is a 2-layer random Llama with a BPE tokenizer trained here by the ``tokenizers`` library;
``builtin:demo-reviews`` is a small paper->review corpus generated from this file's own templates (no copied text).
Both are written once into the cache directory ($LIGHTNING_REVIEW_CACHE, default ~/.cache/lightning_review) and then
loaded by exactly the code that loads a real Llama checkpoint directory and a real JSONL file. Their names resolve
through lightning_review.artifacts.model_sources, where ``register`` enters them (the package calls it on import).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from .artifacts.cache import cache_dir
from .artifacts.model_sources import DEMO_REVIEWS, TINY_LLAMA, register_builtin, write_checkpoint_dir

_METHODS = ["contrastive pretraining", "sparse mixture of experts", "low-rank adaptation", "graph diffusion",
            "curriculum distillation", "energy-based denoising", "retrieval-augmented decoding", "neural ODE solvers"]
_TASKS = ["protein folding", "machine translation", "image segmentation", "speech recognition", "code generation",
          "tabular forecasting", "robot grasping", "molecule design"]
_DATASETS = ["a benchmark of 12 tasks", "three public corpora", "a new dataset of 40k samples", "two simulators"]
_CLAIMS = ["improves accuracy by {n} points", "halves the training cost", "scales to {n} billion parameters",
           "reduces memory by {n} percent", "is robust to label noise"]
_FLAWS = ["the ablation on {task} is missing", "the baselines are weak", "the variance over seeds is not reported",
          "the theory assumes convexity", "the comparison uses different compute budgets"]
_STRENGTHS = ["the idea of applying {method} to {task} is new", "the writing is clear",
              "the experiments on {data} are thorough", "the code is released"]




def demo_records(n: int = 240, seed: int = 0) -> list[dict]:
    """Synthetic paper->review pairs whose reviews refer to their papers, so a model can learn the mapping."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        method, task, data = rng.choice(_METHODS), rng.choice(_TASKS), rng.choice(_DATASETS)
        claims = [c.format(n=rng.randint(2, 60)) for c in rng.sample(_CLAIMS, 3)]
        title = f"{method.title()} for {task.title()}"
        body = [f"{title}", f"Abstract. We study {task} and propose {method}. Our method {claims[0]}."]
        for s in range(rng.randint(3, 7)):
            body.append(f"Section {s + 1}. We evaluate {method} on {data}. The results show that it {claims[s % 3]}."
                        f" We compare {method} with prior work on {task} and discuss limitations.")
        strengths = [t.format(method=method, task=task, data=data) for t in rng.sample(_STRENGTHS, 2)]
        flaws = [t.format(task=task) for t in rng.sample(_FLAWS, 2)]
        rating = rng.randint(3, 8)
        review = (f"Summary: the paper applies {method} to {task} and claims it {claims[0]}.\n"
                  f"Strengths: {strengths[0]}; {strengths[1]}.\nWeaknesses: {flaws[0]}; {flaws[1]}.\n"
                  f"Recommendation: {'accept' if rating >= 6 else 'reject'} ({rating}/10).")
        records.append({"id": f"demo-{i}", "title": title, "paper": "\n\n".join(body), "review": review,
                        "rating": rating, "source": "lightning_review demo"})
    return records


def write_demo_reviews(path: Path, n: int = 240, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as f:
        for rec in demo_records(n, seed):
            f.write(json.dumps(rec) + "\n")
    tmp.replace(path)
    return path


def build_tokenizer(texts: list[str], vocab_size: int = 1024):
    """A Llama-style BPE tokenizer (<unk>, <s>, </s>; metaspace words) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                        "0123456789.,;:!?()[]<>/-'\"\n="))
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<unk>", model_max_length=1 << 20)


def write_tiny_llama(directory: Path, seed: int = 0) -> Path:
    """A random 2-layer Llama checkpoint directory (config, safetensors, tokenizer) as from_pretrained expects."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from .data.prompt import CHAT_SUFFIX, DEFAULT_SYSTEM_PROMPT, chat_prefix

    texts = [r["paper"] + "\n" + r["review"] for r in demo_records(200, seed=seed + 1)]
    texts += [chat_prefix(DEFAULT_SYSTEM_PROMPT) + CHAT_SUFFIX]
    tokenizer = build_tokenizer(texts)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=192, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    model = random_init(LlamaForCausalLM, config, torch.Generator().manual_seed(seed))
    return write_checkpoint_dir(model, tokenizer, directory)


def random_init(model_class, config, generator):
    """A transformers model with weights drawn from ``generator`` only (transformers' Llama init: normal with the
    config's initializer_range, norms at one, the padding embedding at zero). Built on the meta device, so the
    global random state, which ``seed_everything`` set for the run, is not drawn from: the first run on a cold cache
    equals the later ones. Buffers stay uninitialised: only the weights are saved."""
    import torch

    with torch.device("meta"):
        model = model_class(config)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                param.normal_(0.0, config.initializer_range, generator=generator)
        for module in model.modules():
            if isinstance(module, torch.nn.Embedding) and module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
    return model


def tiny_llama_checkpoint() -> Path:
    """``builtin:tiny-llama``: the tiny Llama's checkpoint directory in the cache, written on first use."""
    target = cache_dir() / "tiny-llama"
    if not (target / "config.json").is_file():
        write_tiny_llama(target)
    return target


def demo_reviews_file() -> Path:
    """``builtin:demo-reviews``: the demo corpus's JSONL file in the cache, written on first use."""
    target = cache_dir() / "demo-reviews.jsonl"
    if not target.is_file():
        write_demo_reviews(target)
    return target


def register() -> None:
    """Make ``builtin:tiny-llama`` and ``builtin:demo-reviews`` resolvable (lightning_review.artifacts.model_sources);
    the package calls this when it is imported."""
    register_builtin(TINY_LLAMA, tiny_llama_checkpoint)
    register_builtin(DEMO_REVIEWS, demo_reviews_file)
