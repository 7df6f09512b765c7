"""A real DeepSpeed checkpoint of our training, written on the CPU, and a resume from one: shared by the export
tests (tests/test_export_deepspeed.py) and the resume tests (tests/training/test_resume_deepspeed.py)."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from lightning_review.artifacts.deepspeed_files import deepspeed_checkpoint_globals
from tests.conftest import ROOT

# Our training under Lightning's DeepSpeedStrategy, as configs/13b.yaml sets it (ZeRO-2, bf16, frozen base left
# out, its callbacks: their states go into the checkpoint), on DeepSpeed's CPU accelerator: Lightning allows the
# strategy on CUDA only, so its device checks are bypassed here; one process needs none of the shared-memory
# collectives DeepSpeed would compile for the CPU. With a checkpoint to resume from, the strategy reads it as
# ReviewCLI has it read (read_deepspeed_checkpoints_safely).
DEEPSPEED_RUN = """
import os, sys
os.environ["DS_ACCELERATOR"] = "cpu"
import torch
import deepspeed.comm.torch
import lightning as L
import lightning.pytorch.strategies.deepspeed as lightning_deepspeed
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.strategies import DDPStrategy, DeepSpeedStrategy
from lightning_review import LongQLoRAModule, ReviewDataModule, SaveAdapter
from lightning_review.training.guard import TrainingGuard
from lightning_review.training.resume import read_deepspeed_checkpoints_safely
from lightning_review.training.telemetry import TrainingTelemetry

deepspeed.comm.torch.build_shm_op = lambda: None
lightning_deepspeed._validate_device_index_selection = lambda devices: None  # CPU devices have no index


class CPUDeepSpeed(DeepSpeedStrategy):
    def setup_environment(self):
        DDPStrategy.setup_environment(self)  # without DeepSpeedStrategy's CUDA-only check

    @property
    def root_device(self):
        return torch.device("cpu", 0)  # DeepSpeed reads the device's index as its rank


class CountSteps(L.Callback):
    trained = 0

    def on_train_batch_end(self, *args):
        self.trained += 1


base, root, max_steps, ckpt_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] or None
data = ReviewDataModule(tokenizer_dir=base, max_seq_length=256, batch_size=2, val_fraction=0.1, seed=7)
model = LongQLoRAModule(checkpoint_dir=base, lora_r=4, lora_dropout=0.2, max_seq_length=256, s2_group_size=32,
                        warmup_steps=2, learning_rate=1e-2)
strategy = CPUDeepSpeed(stage=2, exclude_frozen_parameters=True, process_group_backend="gloo")
read_deepspeed_checkpoints_safely(strategy)
checkpoints = ModelCheckpoint(dirpath=os.path.join(root, "checkpoints"), every_n_train_steps=2, save_top_k=3,
                              monitor="step", mode="max", save_last=True)
count = CountSteps()
trainer = L.Trainer(accelerator="cpu", devices=1, precision="bf16-mixed", strategy=strategy, max_steps=max_steps,
                    logger=False, enable_progress_bar=False, limit_val_batches=0, gradient_clip_val=0.3,
                    callbacks=[SaveAdapter(), checkpoints, TrainingTelemetry(), TrainingGuard(), count],
                    enable_model_summary=False, default_root_dir=root)
trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
print(f"trained {count.trained} steps to step {trainer.global_step}")
"""


def run_deepspeed(base, root, max_steps, ckpt_path=None):
    """A run of DEEPSPEED_RUN in its own process (DeepSpeed sets up torch.distributed, which would outlive a test
    here): its subprocess.CompletedProcess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", DEEPSPEED_RUN, str(base), str(root), str(max_steps),
                           str(ckpt_path or "")], cwd=root, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def deepspeed_checkpoint(tiny_llama_dir, tmp_path_factory):
    """The checkpoint directory ModelCheckpoint has DeepSpeed write (last.ckpt) after 2 steps of a run of ours."""
    root = tmp_path_factory.mktemp("deepspeed_run")
    proc = run_deepspeed(tiny_llama_dir, root, 2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = root / "checkpoints" / "last.ckpt"
    assert (out / "latest").is_file()
    return out


def checkpoint_files(checkpoint):
    return sorted((checkpoint / (checkpoint / "latest").read_text().strip()).glob("*.pt"))


class Payload:
    """Unpickled, it makes the directory ``path``: what a hostile file could do instead."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def hostile_copy(deepspeed_checkpoint, tmp_path, which, payload, legacy=False):
    """A copy of the checkpoint with ``payload`` added to its model-states or optimizer-states file."""
    copy = tmp_path / "ds"
    shutil.copytree(deepspeed_checkpoint, copy)
    target = next(f for f in checkpoint_files(copy) if which in f.name)
    with torch.serialization.safe_globals(deepspeed_checkpoint_globals()):
        content = torch.load(target, weights_only=True)
    torch.save({**content, "extra": payload}, target, _use_new_zipfile_serialization=not legacy)
    return copy, target
