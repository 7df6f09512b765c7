"""Distributed set-ups without a GPU: what DeepSpeed receives from configs/13b.yaml, and a 2-process DDP run."""

import json

import torch
import yaml
from deepspeed.runtime.config import DeepSpeedConfig
from lightning.pytorch.strategies import DeepSpeedStrategy

from lightning_review.trainer_cli import ReviewCLI
from lightning_review.data.datamodule import ReviewDataModule
from lightning_review.data.resumable import ResumableSampler
from lightning_review.training.module import LongQLoRAModule
from tests.conftest import ROOT, run_cli
from tests.training.rows_seen import rows_seen


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


def record_rows(directory):
    return "--trainer.callbacks+=" + json.dumps({"class_path": "tests.training.rows_seen.RecordRowsSeen",
                                                 "init_args": {"directory": str(directory)}})


def uninterrupted_order(world_size: int) -> list[list[tuple[str, ...]]]:
    """Each rank's rows in the first epoch of an uninterrupted run of configs/demo.yaml's data (no resume)."""
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    data = ReviewDataModule(**config["data"], tokenizer_dir=config["model"]["checkpoint_dir"])
    data.setup("fit")
    rows = [tuple(example["id"] for example in row) for row in data.train_rows]
    return [[rows[i] for i in ResumableSampler(rows, num_replicas=world_size, rank=rank, seed=data.hparams.seed)]
            for rank in range(world_size)]


def test_two_process_ddp_trains_checkpoints_and_resumes_each_rank_where_it_stopped(tmp_path):
    """Steps 1-6, then a resume to step 9: each rank trains on exactly the rows an uninterrupted run would have,
    none twice, none skipped (batch_size 2: the resume starts at row 12 of each rank's shard)."""
    common = ["-c", str(ROOT / "configs" / "demo.yaml"), "--trainer.strategy=ddp", "--trainer.devices=2",
              f"--trainer.default_root_dir={tmp_path}", "--trainer.val_check_interval=3",
              "--trainer.limit_val_batches=2", "--trainer.callbacks.every_n_train_steps=3"]
    first, resumed = tmp_path / "rows_first", tmp_path / "rows_resumed"
    proc = run_cli("fit", *common, record_rows(first), "--trainer.max_steps=6", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = next(tmp_path.rglob("last.ckpt"))
    assert torch.load(last, weights_only=False)["global_step"] == 6
    proc = run_cli("fit", *common, record_rows(resumed), "--trainer.max_steps=9", f"--ckpt_path={last}",
                   cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Restored all states" in proc.stdout + proc.stderr
    newest = max(tmp_path.rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
    assert torch.load(newest, weights_only=False)["global_step"] == 9

    expected = uninterrupted_order(world_size=2)
    seen = []
    for rank in range(2):
        before, after = rows_seen(first, rank), rows_seen(resumed, rank)
        assert before == expected[rank][:12], f"rank {rank}, steps 1-6"
        assert after == expected[rank][12:18], f"rank {rank}, steps 7-9 after the resume"
        seen += before + after
    assert len(seen) == len(set(seen)) == 36  # no row twice, within a rank or across the two
