"""Data preparation at the seed's scale on this machine: 15,566 synthetic pairs of about 7,600 tokens (118.7 M
tokens) through ``python -m lightning_review prepare`` with a 32K-vocabulary BPE tokenizer built locally.
Targets (issue 5): under 3 minutes end to end, under 4 GB resident memory.

    python benchmarks/prepare.py --work /tmp/prep_bench --out benchmarks/results/prepare_cpu.json

Corpus generation and tokenizer training are set-up, not timed; the timed part is a fresh ``prepare`` process
(reading, validation, tokenization into the cache, packing, statistics, histogram), measured with its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("model data training results method performance network learning approach task dataset loss accuracy "
         "baseline experiment evaluation feature representation attention layer gradient optimization benchmark "
         "proposed novel improve compare show demonstrate analysis theory bound convergence sample efficient "
         "robust generalization transformer graph reinforcement policy reward language vision image text "
         "however therefore moreover although because while which where the of and to in for with on by").split()


def build_tokenizer(directory: Path, corpus_sample: list[str], vocab: int = 32000) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus_sample, trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                            pad_token="</s>").save_pretrained(directory)


def make_corpus(path: Path, pairs: int, seed: int = 0) -> list[str]:
    """Papers of 3,800-6,700 words and reviews of 450 (about 7,000 + 600 tokens under the 32K BPE, the seed's mean
    of 7,600 a pair); numbers and made-up words keep the BPE busy."""
    rng = np.random.default_rng(seed)
    vocab = np.array(WORDS + [f"{w}{i}" for i in range(200) for w in ("x", "net", "var")] +
                     [str(i) for i in range(1000)])
    sample = []
    with path.open("w") as f:
        for i in range(pairs):
            paper = " ".join(vocab[rng.integers(0, len(vocab), int(rng.integers(3800, 6700)))])
            review = " ".join(vocab[rng.integers(0, len(vocab), 450)])
            f.write(json.dumps({"id": f"p{i}", "paper": paper, "review": review}) + "\n")
            if i < 200:
                sample.append(paper)
    return sample


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/prep_bench")
    parser.add_argument("--pairs", type=int, default=15566)
    parser.add_argument("--max_seq_length", type=int, default=8192)
    parser.add_argument("--out", default="prepare.json")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data, tok_dir = work / "pairs.jsonl", work / "tokenizer-32k"
    if not data.exists():
        sample = make_corpus(data, args.pairs)
        build_tokenizer(tok_dir, sample)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIGHTNING_REVIEW_CACHE": str(work / "cache")}
    cmd = [sys.executable, "-m", "lightning_review", "prepare", f"--data_file={data}", f"--tokenizer_dir={tok_dir}",
           f"--max_seq_length={args.max_seq_length}", f"--output_dir={work / 'out'}", "--val_fraction=0.02"]
    runs = []
    for label in ("cold (tokenize)", "warm (cache hit)"):
        start = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
        seconds = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        runs.append({"run": label, "seconds": seconds, "peak_rss_gb": peak_kib / 2**20,
                     "peak_rss_is_max_so_far": peak_kib == before})
    stats = json.loads((work / "out" / "stats.json").read_text())
    result = {"pairs": args.pairs, "max_seq_length": args.max_seq_length, "cpu": platform.processor() or
              platform.machine(), "cores": os.cpu_count(), "runs": runs,
              "tokens": stats["train"]["example_tokens"]["total"] + stats["val"]["example_tokens"]["total"],
              "paper_tokens_p50": stats["train"]["paper_tokens"]["p50"],
              "packing_efficiency": stats["train"]["packing_efficiency"],
              "papers_truncated": stats["train"]["papers_truncated"]}
    print(json.dumps(result, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
