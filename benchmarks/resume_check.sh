#!/usr/bin/env bash
# Kill-free resume check through the command line: run A trains 2N steps with a checkpoint at N, run B resumes A's
# step-N checkpoint to 2N; prints both per-step loss columns. Usage: bash benchmarks/resume_check.sh WORK N ARGS...
set -euo pipefail
work=$1; n=$2; shift 2
common=(fit "$@" --trainer.log_every_n_steps=1 --trainer.limit_val_batches=0 --trainer.max_steps=$((2 * n))
        --trainer.callbacks.every_n_train_steps="$n" --trainer.logger=lightning.pytorch.loggers.CSVLogger
        --trainer.enable_progress_bar=false)
python -m lightning_review "${common[@]}" --trainer.default_root_dir="$work/a" --trainer.logger.save_dir="$work/a" >/dev/null 2>&1
ckpt=$(ls -d "$work"/a/lightning_logs/version_0/checkpoints/*step=$n.ckpt)
python -m lightning_review "${common[@]}" --trainer.default_root_dir="$work/b" --trainer.logger.save_dir="$work/b" \
  --ckpt_path="$ckpt" >/dev/null 2>&1
python - "$work" <<'PY'
import csv, sys
from pathlib import Path
loss = {}
for run in "ab":
    rows = csv.DictReader((Path(sys.argv[1]) / run / "lightning_logs/version_0/metrics.csv").open())
    loss[run] = {int(r["step"]): float(r["train_loss"]) for r in rows if r.get("train_loss")}
for step in sorted(loss["a"]):
    print(step, round(loss["a"][step], 5), round(loss["b"].get(step, float("nan")), 5))
PY
