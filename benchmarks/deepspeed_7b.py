"""The training-at-scale path on one GPU: configs/13b.yaml's DeepSpeed ZeRO-2 bf16 recipe on a 7B-shaped random
Llama, 8K-token rows, 20 steps with a checkpoint at 10 and 20; a second run resumed from step 10 to 20 (the loss and
weights compared with the uninterrupted run); export of the adapter from the DeepSpeed checkpoint and of the merged
bf16 model, which plain transformers then loads. Every run goes through ``python -m lightning_review``.

    python benchmarks/deepspeed_7b.py --work /tmp/ds7b --out results.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak_flops import measure  # noqa: E402
from shapes import random_llama_checkpoint, synthetic_reviews  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, skip_if: Path | None = None) -> float | None:
    """Runs the command line; skipped (None) when ``skip_if`` exists from an earlier call on a warm machine."""
    if skip_if is not None and skip_if.exists():
        return None
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lightning_review", *args], check=True, cwd=ROOT)
    return time.perf_counter() - start


def metrics(run_dir: Path) -> list[dict]:
    rows = []
    for path in sorted(run_dir.rglob("metrics.csv")):
        rows += [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(path.open())]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/ds7b")
    parser.add_argument("--out", default="deepspeed_7b.json")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seq", type=int, default=8192)
    parser.add_argument("--skip_export", action="store_true", help="stop after the resume comparison")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "seq": args.seq}
    result["peak_bf16_tflops"] = peak = measure()
    result["max_abs_loss_diff_after_resume"] = None
    start = time.perf_counter()
    ckpt_dir = random_llama_checkpoint("7b", work / "llama-7b-random")
    result["build_checkpoint_s"] = time.perf_counter() - start
    from transformers import AutoTokenizer

    data = work / "long_reviews.jsonl"
    if not data.exists():
        synthetic_reviews(data, AutoTokenizer.from_pretrained(ckpt_dir), n=120, paper_tokens=7000, review_tokens=600)
    half = args.steps // 2
    common = ["fit", "-c", "configs/13b.yaml", "--trainer.devices=1", f"--model.checkpoint_dir={ckpt_dir}",
              f"--data.train_file={data}", f"--data.max_seq_length={args.seq}", f"--model.model_max_length={args.seq}",
              "--trainer.accumulate_grad_batches=1", "--trainer.log_every_n_steps=1", "--trainer.limit_val_batches=0",
              f"--trainer.max_steps={args.steps}", f"--trainer.callbacks.every_n_train_steps={half}",
              "--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--telemetry.peak_tflops={peak}",
              "--trainer.enable_progress_bar=false"]
    run_a, run_b = work / "run_a", work / "run_b"
    done = Path("lightning_logs/version_0/adapter")
    result["run_a_s"] = cli(*common, f"--trainer.default_root_dir={run_a}", f"--trainer.logger.save_dir={run_a}",
                            skip_if=run_a / done)
    step_ckpt = next(run_a.rglob(f"*step={half}.ckpt"))
    result["checkpoint_mb"] = sum(f.stat().st_size for f in step_ckpt.rglob("*") if f.is_file()) / 2**20
    result["run_b_s"] = cli(*common, f"--trainer.default_root_dir={run_b}", f"--trainer.logger.save_dir={run_b}",
                            f"--ckpt_path={step_ckpt}", skip_if=run_b / done)
    a, b = metrics(run_a), metrics(run_b)
    perf = [r for r in a if "perf/tokens_per_sec" in r and r["step"] > 2 and int(r["step"]) % half != 1]
    result["tokens_per_sec"] = sum(r["perf/tokens_per_sec"] for r in perf) / len(perf)
    result["mfu"] = sum(r["perf/mfu"] for r in perf) / len(perf)
    result["peak_memory_gb"] = max(r.get("perf/peak_memory_gb", 0) for r in a)
    result["peak_reserved_gb"] = max(r.get("perf/peak_reserved_gb", 0) for r in a)
    result["packing_efficiency"] = perf[-1]["perf/packing_efficiency"]
    loss_a = {int(r["step"]): r["train_loss"] for r in a if "train_loss" in r}
    loss_b = {int(r["step"]): r["train_loss"] for r in b if "train_loss" in r}
    result["loss_a"], result["loss_b"] = loss_a, loss_b
    result["resumed_first_step"] = min(loss_b) if loss_b else None
    result["max_abs_loss_diff_after_resume"] = max(abs(loss_a[k] - loss_b[k]) for k in loss_b)
    from safetensors.torch import load_file

    ad_a = load_file(next(run_a.rglob("adapter/adapter_model.safetensors")))
    ad_b = load_file(next(run_b.rglob("adapter/adapter_model.safetensors")))
    result["resume_max_abs_weight_diff"] = max((ad_a[k].float() - ad_b[k].float()).abs().max().item() for k in ad_a)
    result["resume_max_abs_weight"] = max(t.float().abs().max().item() for t in ad_a.values())

    if args.skip_export:
        print(json.dumps({k: v for k, v in result.items() if not k.startswith("loss_")}, indent=1))
        Path(args.out).write_text(json.dumps(result, indent=1))
        return
    final = next(run_a.rglob(f"*step={args.steps}.ckpt"))
    exported, merged = work / "adapter_from_deepspeed", work / "merged"
    result["export_adapter_s"] = cli("export-adapter", f"--checkpoint={final}", f"--output_dir={exported}")
    ad_x = load_file(exported / "adapter_model.safetensors")
    result["export_vs_saved_adapter_max_abs_diff"] = max((ad_x[k].float() - ad_a[k].float()).abs().max().item()
                                                         for k in ad_a)
    result["export_merged_s"] = cli("export", f"--adapter_dir={exported}", f"--output_dir={merged}")
    check = ("import sys, torch; from transformers import AutoModelForCausalLM;"
             "m = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16, device_map='cuda');"
             "assert not [k for k in sys.modules if k.startswith('lightning_review')];"
             "out = m(input_ids=torch.arange(4096, device='cuda')[None] % 800).logits;"
             "print('MERGED', m.config.rope_parameters, bool(torch.isfinite(out).all()))")
    proc = subprocess.run([sys.executable, "-c", check, str(merged)], capture_output=True, text=True, check=True)
    result["merged_load"] = [line for line in proc.stdout.splitlines() if line.startswith("MERGED")]
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("loss_")}, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
