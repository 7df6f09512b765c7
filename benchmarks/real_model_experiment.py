"""The whole pipeline on a real pretrained model and real papers (issue 17), stage by stage, each stage a command a
user would run (``python -m lightning_review ...``), timed, with its figures gathered into one JSON:

  split     the papers of ``--data_file`` (a paper with its reviews a line): the ``--held_out`` longest papers held
            out (so the held-out text has a window at the longest length), the rest for training
  ctx       perplexity of the held-out papers (joined) at ``--lengths`` for the base model and the base with linear
            RoPE interpolation (untrained); LongQLoRA context extension on the training papers' text
            (``data.task text``, rows of ``--ctx_len``; ``--ctx_text_file`` for other long text) and the perplexity
            of its adapter
  review    review fine-tuning of the base model (``--base_review_len``, native context) and of the context-extended
            adapter (``--review_len``), the held-out reviews' loss before (``validate``) and after
  generate  reviews of the held-out papers by the untrained model and both fine-tuned adapters

    python benchmarks/real_model_experiment.py --data_file papers.jsonl --out runs/experiment --stages split,ctx
    python benchmarks/real_model_experiment.py --data_file papers.jsonl --out runs/experiment --stages review,generate
Then, where sentence-transformers is installed: ``evaluate`` of ``out/reviews_*.jsonl`` against ``out/held_out.jsonl``.
A CPU check of the script: ``--model builtin:tiny-llama --accelerator cpu --precision 32-true`` with short lengths.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], log: Path) -> float:
    """``python -m lightning_review <args>``; its output in ``log``; the wall time; stops the script on failure."""
    started = time.perf_counter()
    with log.open("w") as f:
        done = subprocess.run([sys.executable, "-m", "lightning_review", *args], stdout=f, stderr=subprocess.STDOUT,
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}"})
    seconds = time.perf_counter() - started
    if done.returncode:
        print(log.read_text()[-4000:])
        raise SystemExit(f"failed: lightning_review {' '.join(args[:1])} (log {log})")
    print(f"  {args[0]} {args[1] if len(args) > 1 and not args[1].startswith('-') else ''}: {seconds:.1f} s")
    return seconds


def split(opts) -> None:
    lines = [json.loads(line) for line in Path(opts.data_file).read_text().splitlines() if line.strip()]
    by_length = sorted(lines, key=lambda paper: -len(paper["paper"]))
    held_out, train = by_length[:opts.held_out], by_length[opts.held_out:]
    for name, rows in (("train", train), ("held_out", held_out)):
        (opts.out / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (opts.out / "held_out_papers.jsonl").write_text(
        "".join(json.dumps({"id": row["id"], "paper": row["paper"]}) + "\n" for row in held_out))
    print(f"  held out {[row['id'] for row in held_out]}, training on {[row['id'] for row in train]}")


def csv_logger(save_dir: Path) -> list[str]:
    return ["--trainer.logger", json.dumps({"class_path": "lightning.pytorch.loggers.CSVLogger",
                                            "init_args": {"save_dir": str(save_dir), "name": "", "version": ""}})]


def metrics(save_dir: Path) -> list[dict]:
    rows = []
    for path in glob.glob(str(save_dir / "**" / "metrics.csv"), recursive=True):
        with open(path) as f:
            rows += [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
    return rows


def last(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if key in row]
    return values[-1] if values else None


def peak(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if key in row]
    return max(values) if values else None


def common(opts) -> list[str]:
    return ["--trainer.accelerator", opts.accelerator, "--trainer.precision", opts.precision,
            "--trainer.num_sanity_val_steps", "0", "--trainer.enable_checkpointing", "false",
            "--trainer.callbacks", "lightning_review.SaveAdapter", "--model.checkpoint_dir", opts.model,
            "--model.quantize", str(opts.quantize).lower(), "--data.val_fraction", "0",
            "--data.val_file", str(opts.out / "held_out.jsonl"), "--data.train_file", str(opts.out / "train.jsonl")]


def perplexity(opts, name: str, extra: list[str]) -> dict:
    out = opts.out / f"perplexity_{name}"
    seconds = run(["perplexity", "--data_file", str(opts.out / "held_out_papers.jsonl"), "--lengths", opts.lengths,
                   "--join", "true", "--output_dir", str(out), *extra], opts.out / f"perplexity_{name}.log")
    summary = json.loads((out / "perplexity.json").read_text())
    return {"seconds": round(seconds, 1), "results": summary["results"], "rope": summary["rope_parameters"]}


def fit(opts, name: str, settings: list[str]) -> dict:
    """``fit`` with the settings, its metrics and adapter."""
    root = opts.out / name
    seconds = run(["fit", *common(opts), "--trainer.default_root_dir", str(root), *csv_logger(root), *settings],
                  opts.out / f"{name}.log")
    rows = metrics(root)
    adapters = sorted(glob.glob(str(root / "**" / "adapter"), recursive=True))
    return {"seconds": round(seconds, 1), "adapter": adapters[-1] if adapters else None,
            "train_loss_first": next((r["train_loss"] for r in rows if "train_loss" in r), None),
            "train_loss_last": last(rows, "train_loss"), "val_loss": last(rows, "val_loss"),
            "tokens_per_s": last(rows, "perf/tokens_per_sec"), "mfu": last(rows, "perf/mfu"),
            "peak_memory_gb": peak(rows, "perf/peak_memory_gb"),
            "steps": int(last(rows, "step") or 0) + 1, "metrics": rows}


def validate(opts, name: str, settings: list[str]) -> dict:
    root = opts.out / name
    seconds = run(["validate", *common(opts), "--trainer.default_root_dir", str(root), *csv_logger(root), *settings],
                  opts.out / f"{name}.log")
    loss = last(metrics(root), "val_loss")
    return {"seconds": round(seconds, 1), "val_loss": loss, "val_perplexity": math.exp(loss) if loss else None}


def validate_at_end(steps: int) -> list[str]:
    """Validation once, after the last step (counted in steps across epochs), and a log line every step."""
    return ["--trainer.check_val_every_n_epoch", "null", "--trainer.val_check_interval", str(steps),
            "--trainer.log_every_n_steps", "1"]


def stage_ctx(opts, results: dict) -> None:
    if opts.ctx_baselines:
        results["perplexity_base"] = perplexity(opts, "base", ["--checkpoint_dir", opts.model])
        results["perplexity_pi_untrained"] = perplexity(opts, "pi_untrained", [
            "--checkpoint_dir", opts.model, "--model_max_length", str(opts.ctx_len)])
    text = ["--data.train_file", opts.ctx_text_file] if opts.ctx_text_file else []
    results["ctx_training"] = fit(opts, "ctx", [
        "--data.task", "text", "--data.max_seq_length", str(opts.ctx_len), "--model.model_max_length",
        str(opts.ctx_len), "--trainer.max_steps", str(opts.ctx_steps), *validate_at_end(opts.ctx_steps),
        "--model.learning_rate", str(opts.ctx_lr), "--model.warmup_steps", str(opts.ctx_warmup), *text])
    results["perplexity_ctx_trained"] = perplexity(opts, "ctx_trained",
                                                   ["--adapter_dir", results["ctx_training"]["adapter"]])


def stage_review(opts, results: dict) -> None:
    review = ["--data.task", "review", "--trainer.max_steps", str(opts.review_steps),
              *validate_at_end(opts.review_steps),
              "--model.learning_rate", str(opts.review_lr), "--model.warmup_steps", "2"]
    base = [*review, "--data.max_seq_length", str(opts.base_review_len), "--model.model_max_length", "null"]
    results["review_base_before"] = validate(opts, "review_base_before", base)
    results["review_base"] = fit(opts, "review_base", base)
    ctx_adapter = results["ctx_training"]["adapter"]
    extended = [*review, "--data.max_seq_length", str(opts.review_len), "--model.model_max_length",
                str(opts.ctx_len), "--model.adapter_dir", ctx_adapter]
    results["review_ctx_before"] = validate(opts, "review_ctx_before", extended)
    results["review_ctx"] = fit(opts, "review_ctx", extended)
    for name in ("review_base", "review_ctx"):
        loss = results[name]["val_loss"]
        results[name]["val_perplexity"] = math.exp(loss) if loss else None


def stage_generate(opts, results: dict) -> None:
    decoding = ["--max_new_tokens", str(opts.max_new_tokens), "--repetition_penalty", str(opts.repetition_penalty),
                "--batch_size", str(opts.held_out), "--papers", str(opts.out / "held_out_papers.jsonl")]
    systems = {"untrained": ["--model_dir", opts.model], "review_base": ["--adapter_dir", results["review_base"]["adapter"]],
               "review_ctx": ["--adapter_dir", results["review_ctx"]["adapter"]]}
    results["generate"] = {}
    for name, source in systems.items():
        seconds = run(["generate", *source, *decoding, "--output_file", str(opts.out / f"reviews_{name}.jsonl"),
                       "--overwrite", "true", "--dtype", opts.generate_dtype], opts.out / f"generate_{name}.log")
        results["generate"][name] = {"seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--stages", default="split,ctx,review,generate")
    parser.add_argument("--model", default="builtin:smollm2-135m")
    parser.add_argument("--held_out", type=int, default=3)
    parser.add_argument("--lengths", default="2048,4096,8192,16384,32768")
    parser.add_argument("--ctx_len", type=int, default=32768)
    parser.add_argument("--ctx_steps", type=int, default=30)
    parser.add_argument("--ctx_lr", type=float, default=2e-4)
    parser.add_argument("--ctx_warmup", type=int, default=2)
    parser.add_argument("--ctx_text_file", default=None,
                        help="long text for the context extension (papers a line; default: the training papers)")
    parser.add_argument("--ctx_baselines", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the base and the untrained-interpolation perplexity too")
    parser.add_argument("--review_len", type=int, default=16384)
    parser.add_argument("--base_review_len", type=int, default=8192)
    parser.add_argument("--review_steps", type=int, default=40)
    parser.add_argument("--review_lr", type=float, default=2e-4)
    parser.add_argument("--max_new_tokens", type=int, default=512)
    parser.add_argument("--repetition_penalty", type=float, default=1.1)
    parser.add_argument("--accelerator", default="gpu")
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--quantize", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--generate_dtype", default="bfloat16")
    opts = parser.parse_args()
    opts.out.mkdir(parents=True, exist_ok=True)
    summary_file = opts.out / "experiment.json"
    results = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    results.setdefault("settings", {}).update({k: str(v) for k, v in vars(opts).items()})
    stages = {"split": lambda: split(opts), "ctx": lambda: stage_ctx(opts, results),
              "review": lambda: stage_review(opts, results), "generate": lambda: stage_generate(opts, results)}
    for name in opts.stages.split(","):
        print(f"stage {name}")
        started = time.perf_counter()
        stages[name]()
        results.setdefault("stage_seconds", {})[name] = round(time.perf_counter() - started, 1)
        summary_file.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
