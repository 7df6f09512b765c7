"""Resuming from a DeepSpeed checkpoint directory (``fit --ckpt_path <dir>``): DeepSpeed's engine loads it with
plain pickle; ReviewCLI has it read through deepspeed_files_read_safely, so a run of ours resumes (on the CPU here)
and a file naming any other global, or a ``latest`` tag leading out of the directory, stops it before loading."""

import shutil

import pytest
import torch

from lightning_review.artifacts.checkpoint_files import CheckpointError
from tests.conftest import ROOT
from tests.training.deepspeed_cpu import (Payload, checkpoint_files, deepspeed_checkpoint,  # noqa: F401
                                          hostile_copy, run_deepspeed)


def test_the_model_states_client_state_needs_no_global_beyond_torchs(deepspeed_checkpoint):
    """Lightning's part of the checkpoint (loops, callbacks, hyperparameters, the DataModule's position, our random
    states) is plain data: the DeepSpeed classes allowed are all in the optimizer states."""
    model_states = next(f for f in checkpoint_files(deepspeed_checkpoint) if "model_states" in f.name)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(model_states) == []
    content = torch.load(model_states, weights_only=True)
    assert {"loops", "callbacks", "hyper_parameters", "ReviewDataModule", "lightning_review_rng_states"} <= set(content)


def test_a_run_of_ours_resumes_from_its_deepspeed_directory_through_the_safe_loader(deepspeed_checkpoint,
                                                                                    tiny_llama_dir, tmp_path):
    proc = run_deepspeed(tiny_llama_dir, tmp_path, 4, ckpt_path=deepspeed_checkpoint)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trained 2 steps to step 4" in proc.stdout  # steps 3 and 4: it went on from step 2


@pytest.mark.parametrize("which", ["model_states", "optim_states"])
def test_a_file_naming_another_global_stops_the_resume_unrun(deepspeed_checkpoint, tiny_llama_dir, tmp_path, which):
    ran = tmp_path / "payload_ran"
    copy, target = hostile_copy(deepspeed_checkpoint, tmp_path, which, Payload(ran))
    proc = run_deepspeed(tiny_llama_dir, tmp_path, 4, ckpt_path=copy)
    assert proc.returncode != 0
    assert (f"UnsafeCheckpointError: {target}: refused, its pickle needs posix.mkdir, which no DeepSpeed checkpoint "
            "of a lightning_review run holds (loading it could run code)") in proc.stderr
    assert not ran.exists()


def test_a_latest_tag_leading_out_stops_the_resume(deepspeed_checkpoint, tiny_llama_dir, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(deepspeed_checkpoint, copy)
    shutil.copytree(copy / "checkpoint", tmp_path / "elsewhere")
    (copy / "latest").write_text("../elsewhere")
    proc = run_deepspeed(tiny_llama_dir, tmp_path, 4, ckpt_path=copy)
    assert proc.returncode != 0
    assert (f"CheckpointError: {copy / 'latest'}: refused, it names the tag '../elsewhere', which is not a directory "
            f"inside {copy}") in proc.stderr


def test_review_cli_reads_a_deepspeed_checkpoint_safely(tiny_llama_dir, tmp_path):
    """The CLI's DeepSpeedStrategy (configs/13b.yaml) loads through the safe reader: its tag check answers before
    DeepSpeed's engine (not even set up here) is asked for anything."""
    from lightning.pytorch.strategies import DeepSpeedStrategy

    from lightning_review.data.datamodule import ReviewDataModule
    from lightning_review.trainer_cli import ReviewCLI
    from lightning_review.training.module import LongQLoRAModule

    cli = ReviewCLI(LongQLoRAModule, ReviewDataModule, run=False, args=[
        "-c", str(ROOT / "configs" / "13b.yaml"), "--trainer.accelerator=cpu", f"--model.checkpoint_dir={tiny_llama_dir}",
        "--data.train_file=builtin:demo-reviews", "--data.max_seq_length=256",
        f"--trainer.default_root_dir={tmp_path / 'run'}"])
    assert isinstance(cli.trainer.strategy, DeepSpeedStrategy)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "latest").write_text("/etc")
    with pytest.raises(CheckpointError, match=r"latest: refused, it names the tag '/etc', which is not a directory"):
        cli.trainer.strategy.load_checkpoint(tmp_path / "ds")
