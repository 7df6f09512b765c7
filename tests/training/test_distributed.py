"""Distributed set-ups without a GPU: what DeepSpeed receives from configs/13b.yaml, and a 2-process DDP run."""

import json

import torch
from deepspeed.runtime.config import DeepSpeedConfig
from lightning.pytorch.strategies import DeepSpeedStrategy

from lightning_review.trainer_cli import ReviewCLI
from lightning_review.data.datamodule import ReviewDataModule
from lightning_review.model.module import LongQLoRAModule
from tests.conftest import ROOT, run_cli


def test_13b_config_gives_deepspeed_zero2_bf16(tiny_llama_dir):
    cli = ReviewCLI(LongQLoRAModule, ReviewDataModule, run=False, args=[
        "-c", str(ROOT / "configs" / "13b.yaml"), "--trainer.accelerator=cpu",  # the GPU is all that is swapped
        f"--model.checkpoint_dir={tiny_llama_dir}", "--data.train_file=builtin:demo-reviews",
        "--data.max_seq_length=256"])
    trainer, strategy = cli.trainer, cli.trainer.strategy
    assert isinstance(strategy, DeepSpeedStrategy) and trainer.num_devices == 2
    # What Lightning adds at setup (precision, micro-batch, accumulation, clipping), done here without a GPU.
    trainer._data_connector.attach_data(cli.model, datamodule=cli.datamodule)
    strategy.connect(cli.model)
    cli.model.trainer = trainer
    cli.datamodule.setup("fit")
    strategy._format_config()
    config = strategy.config  # the dict handed to deepspeed.initialize(config=...)
    zero = config["zero_optimization"]
    assert zero["stage"] == 2 and "offload_optimizer" not in zero
    assert zero["overlap_comm"] and zero["contiguous_gradients"] and zero["reduce_bucket_size"] == 2e8
    assert config["bf16"] == {"enabled": True} and "fp16" not in config
    assert config["gradient_accumulation_steps"] == 8 and config["train_micro_batch_size_per_gpu"] == 1
    assert config["gradient_clipping"] == 0.3
    assert strategy.exclude_frozen_parameters  # checkpoints without the 4-bit base
    parsed = DeepSpeedConfig(json.loads(json.dumps(config)))  # DeepSpeed's own validation accepts it
    assert parsed.zero_optimization_stage == 2 and parsed.bfloat16_config.enabled


def test_two_process_ddp_trains_checkpoints_and_resumes(tmp_path):
    common = ["-c", str(ROOT / "configs" / "demo.yaml"), "--trainer.strategy=ddp", "--trainer.devices=2",
              f"--trainer.default_root_dir={tmp_path}", "--trainer.val_check_interval=3",
              "--trainer.limit_val_batches=2", "--trainer.callbacks.every_n_train_steps=3"]
    proc = run_cli("fit", *common, "--trainer.max_steps=6", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = next(tmp_path.rglob("last.ckpt"))
    assert torch.load(last, weights_only=False)["global_step"] == 6
    proc = run_cli("fit", *common, "--trainer.max_steps=9", f"--ckpt_path={last}", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Restored all states" in proc.stdout + proc.stderr
    newest = max(tmp_path.rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
    assert torch.load(newest, weights_only=False)["global_step"] == 9
