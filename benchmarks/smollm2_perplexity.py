"""Perplexity of the real SmolLM2-135M-Instruct on real papers at 2K-32K, before any training: the base model as it
is and with linear RoPE interpolation x4 (untrained). The curve LongQLoRA training has to flatten (issue 17).

    python benchmarks/smollm2_perplexity.py --data_file papers.jsonl --output_dir out/ [--checkpoint builtin:smollm2-135m]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lightning_review.evaluate.perplexity_command import perplexity

LENGTHS = "2048,4096,8192,16384,32768"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--checkpoint", default="builtin:smollm2-135m")
    parser.add_argument("--lengths", default=LENGTHS)
    parser.add_argument("--interpolated_context", type=int, default=32768, help="model_max_length of the PI run")
    args = parser.parse_args()
    out = Path(args.output_dir)
    rows = {}
    for name, max_length in (("base", None), (f"pi_{args.interpolated_context}", args.interpolated_context)):
        started = time.perf_counter()
        summary = perplexity(args.data_file, lengths=args.lengths, checkpoint_dir=args.checkpoint,
                             model_max_length=max_length, join=True, output_dir=str(out / name), plot=True)
        rows[name] = {r["length"]: r["perplexity"] for r in summary["results"]}
        print(f"{name}: {time.perf_counter() - started:.1f} s, rope {summary['rope_parameters']}")
    print("| model | " + " | ".join(f"{int(n):,}" for n in rows["base"]) + " |")
    for name, by_length in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" if v else "n/a" for v in by_length.values()) + " |")
    (out / "summary.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
