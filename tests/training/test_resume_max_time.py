"""A resumed fit whose trainer.max_time its checkpoint's run has spent already is refused before the model loads,
saying the time spent, the limit and the total to give. Lightning's Timer counts the run's whole training time
across resumes, on purpose (it restores the time spent from the checkpoint); such a fit used to load the model, stop
before its first step and exit 0, with no adapter and only an info line "Time limit reached"."""

import math
from types import SimpleNamespace

import pytest
import torch

from lightning_review.training.trainer_checks import spent_time_problem
from tests.conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def timed_checkpoint(tiny_llama_dir, tmp_path_factory):
    """last.ckpt of a 2-step run of the command line with a time limit, and the training seconds it recorded."""
    root = tmp_path_factory.mktemp("timed_run")
    proc = run_cli("fit", "-c", str(ROOT / "configs" / "demo.yaml"), "--trainer.max_steps=2",
                   "--trainer.max_time=00:01:00:00", "--trainer.limit_val_batches=0",
                   f"--trainer.default_root_dir={root}", cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = next(root.rglob("last.ckpt"))
    spent = torch.load(ckpt, weights_only=True)["callbacks"]["Timer"]["time_elapsed"]["train"]
    return ckpt, spent


def resume(ckpt, max_time):
    root = ckpt.parents[3]
    return run_cli("fit", "-c", str(ROOT / "configs" / "demo.yaml"), "--trainer.max_steps=3",
                   f"--trainer.max_time={max_time}", "--trainer.limit_val_batches=0",
                   f"--trainer.default_root_dir={root}", f"--ckpt_path={ckpt}", cwd=root)


def test_a_resume_with_a_spent_max_time_is_refused_naming_the_total_that_trains(timed_checkpoint):
    ckpt, spent = timed_checkpoint
    limit_ms = math.floor(spent * 1000)  # just under the time spent, on any machine: in milliseconds
    assert limit_ms > 0
    proc = resume(ckpt, f'{{"milliseconds": {limit_ms}}}')
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    error = proc.stderr.strip().splitlines()[-1]
    total = math.ceil(spent) + math.ceil(limit_ms / 1000)
    assert error.startswith(f"error: --ckpt_path {ckpt}: its run has trained for 00:00:00:{int(spent):02d} "), error
    assert f"trainer.max_time={{'milliseconds': {limit_ms}}} is no more than that" in error
    assert f"e.g. --trainer.max_time 00:00:00:{total:02d} to train" in error
    assert "Restored all states" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    # the total it names trains on
    proc = resume(ckpt, f"00:00:00:{total:02d}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    newest = max(ckpt.parents[2].rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
    assert torch.load(newest, weights_only=True)["global_step"] == 3


def checkpoint_with_timer(seconds):
    return {"callbacks": {"Timer": {"time_elapsed": {"train": seconds, "validate": 0}}}}


def test_a_timer_callbacks_duration_is_the_limit_lightning_uses():
    """A Timer among trainer.callbacks makes Lightning ignore trainer.max_time: its duration is the limit."""
    timer = SimpleNamespace(class_path="lightning.pytorch.callbacks.Timer",
                            init_args=SimpleNamespace(duration="00:00:01:00"))
    trainer = {"max_time": "00:10:00:00", "callbacks": [timer]}
    problem = spent_time_problem(trainer, checkpoint_with_timer(3600.5), "last.ckpt")
    assert "trained for 00:01:00:00 (DD:HH:MM:SS) already, and the Timer callback's duration=00:00:01:00" in problem
    assert "e.g. 00:01:01:01 (in trainer.callbacks) to train 00:00:01:00 more" in problem
    assert spent_time_problem(trainer, checkpoint_with_timer(59.0), "last.ckpt") is None


@pytest.mark.parametrize("max_time, checkpoint", [
    (None, checkpoint_with_timer(100.0)),            # no limit now
    ("00:00:02:00", checkpoint_with_timer(100.0)),   # time left
    ("00:00:00:01", {"callbacks": {}}),              # the run had no Timer: Lightning's starts at 0
    ("1 day", checkpoint_with_timer(100.0)),         # Lightning's Timer refuses this string itself
])
def test_a_resume_with_time_left_or_no_timer_passes(max_time, checkpoint):
    assert spent_time_problem({"max_time": max_time}, checkpoint, "last.ckpt") is None
