"""The Trainer's settings and ``--ckpt_path`` checked from the parsed config of fit / validate / test / predict, before
anything is built (the model loads in configure_model, after the Trainer): each bad one named with its fix, where
Lightning would fail later with a traceback, after the model loaded (a missing checkpoint, a default_root_dir that
is a file, 64-bit precision), in the first step (accumulate_grad_batches 0: a ZeroDivisionError), at the NaN-loss
guard (precision 16-true) or not at all (accumulate_grad_batches -2 ran; max_steps 0 and max_time 0 loaded the model
and stopped without an adapter or checkpoint, exit 0)."""

from __future__ import annotations

import functools
import math
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping

from ..errors import UserError
from ..safe_paths import file_in_the_way

# ckpt_path values Lightning resolves itself (from the checkpoint callbacks, SLURM, the model registry)
SPECIAL_CKPT_PATHS = ("last", "best", "hpc", "registry")


def trainer_problems(trainer: Mapping[str, Any], subcommand: str) -> list[str]:
    """``trainer.<key> ...`` for each setting of ``trainer`` (the parsed config's trainer section) that cannot
    work, with its fix."""
    problems = []
    accumulate = trainer.get("accumulate_grad_batches", 1)
    if isinstance(accumulate, int) and accumulate < 1:
        problems.append(f"trainer.accumulate_grad_batches must be >= 1 (micro-batches per optimizer step; 1: no "
                        f"accumulation), got {accumulate}")
    if subcommand == "fit":
        if trainer.get("max_steps") == 0:
            problems.append("trainer.max_steps=0 trains no step (fit would load the model and stop without an "
                            "adapter or checkpoint): set it > 0, or -1 to let trainer.max_epochs bound the run")
        if trainer.get("max_epochs") == 0:
            problems.append("trainer.max_epochs=0 trains no step (fit would load the model and stop without an "
                            "adapter or checkpoint): set it > 0, or -1 to let trainer.max_steps bound the run")
        limit = trainer.get("limit_train_batches")
        if limit is not None and not isinstance(limit, bool) and limit == 0:
            problems.append("trainer.limit_train_batches=0 trains no batch (fit would load the model and "
                            "stop without an adapter): leave it out, or give a number of batches > 0 or a "
                            "fraction of the epoch in (0, 1]")
    if problem := max_time_problem(trainer.get("max_time"), subcommand):
        problems.append(problem)
    interval = trainer.get("val_check_interval")
    if _number(interval) and not interval > 0:  # 0: a ZeroDivisionError at the first step; NaN
        problems.append(f"trainer.val_check_interval must be > 0 (training batches between validations, or a "
                        f"fraction of an epoch), got {interval}; to skip validation set trainer.limit_val_batches 0")
    every = trainer.get("check_val_every_n_epoch")
    if _number(every) and every < 1:  # 0: a ZeroDivisionError at the first step
        problems.append(f"trainer.check_val_every_n_epoch must be >= 1 (epochs between validations), or null to "
                        f"count trainer.val_check_interval across epochs, got {every}; to skip validation set "
                        f"trainer.limit_val_batches 0")
    clip = trainer.get("gradient_clip_val")
    if _number(clip) and not clip >= 0:  # a negative norm flips every gradient: the run climbs the loss
        problems.append(f"trainer.gradient_clip_val must be >= 0 (the largest gradient norm; 0 or null: no "
                        f"clipping), got {clip}")
    precision = str(trainer.get("precision"))
    if precision in ("64", "64-true", "double"):
        problems.append(f"trainer.precision={precision} is not supported: the 4-bit LoRA model computes in "
                        f"float32 at most; use 32-true (or bf16-mixed on a GPU)")
    if precision == "16-true" and subcommand == "fit":
        problems.append("trainer.precision=16-true trains in float16 without loss scaling: the loss overflows to NaN "
                        "within a few steps (step 2 of the CPU demo) and the run stops at the NaN-loss guard, after "
                        "the model loaded; use bf16-mixed on a GPU (as configs/7b.yaml and 13b.yaml do), or 32-true "
                        "on a CPU")
    accelerator = trainer.get("accelerator")
    if precision in ("16", "16-mixed") and _runs_on_cpu(accelerator):
        problems.append(f"trainer.precision={precision} is float16 autocast, which Lightning does not run on a CPU: it "
                        f"would run bf16-mixed instead (only a warning says so), in bfloat16, whose backward is slow "
                        f"on a CPU; on a CPU give --trainer.precision 32-true ({precision} is for a GPU)")
    if isinstance(accelerator, str) and accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            problems.append(f"trainer.accelerator={accelerator}, but torch sees no CUDA GPU here: on a CPU give "
                            f"--trainer.accelerator cpu --trainer.precision 32-true")
    strategy = trainer.get("strategy")
    # a name (deepspeed_stage_2), or a class_path with its init_args (configs/13b.yaml): a Namespace or a dict
    class_path = strategy.get("class_path") if isinstance(strategy, Mapping) else getattr(strategy, "class_path", None)
    strategy_name = str(class_path or strategy)
    if "deepspeed" in strategy_name.lower():
        import torch

        if not torch.cuda.is_available() or accelerator == "cpu":
            problems.append(f"trainer.strategy={strategy_name} runs on CUDA GPUs only, and this run has none "
                            f"(trainer.accelerator={accelerator}): on a CPU leave trainer.strategy out (auto)")
    root = trainer.get("default_root_dir")
    if root and "://" not in str(root):
        blocker = file_in_the_way(Path(root))
        if blocker is not None:
            what = "is a file" if blocker == Path(root) else f"is under {blocker}, which is a file"
            problems.append(f"trainer.default_root_dir={root} {what}, not a directory (the run's logs, checkpoints "
                            f"and adapter go there): give a directory")
    return problems


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _runs_on_cpu(accelerator: Any) -> bool:
    """Whether Lightning will put the run on the CPU: ``cpu``, or ``auto`` (the default) with no CUDA or MPS device."""
    if accelerator == "cpu":
        return True
    if accelerator not in (None, "auto"):
        return False
    import torch

    return not torch.cuda.is_available() and not torch.backends.mps.is_available()


# the units Python's timedelta takes: the keys of a dict max_time (Lightning's Timer calls timedelta(**max_time))
MAX_TIME_UNITS = ("weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds")
# Lightning's Timer, as a config's callbacks name it; its state in a checkpoint is under "Timer"
TIMER_CLASSES = ("lightning.pytorch.callbacks.Timer", "lightning.pytorch.callbacks.timer.Timer")
# the one string form Lightning's Timer reads (it refuses any other, a negative one too, in one line)
MAX_TIME_FORMAT = re.compile(r"(\d+):(\d\d):(\d\d):(\d\d)")


def max_time_duration(max_time: Any) -> timedelta | None:
    """``trainer.max_time`` as the duration Lightning's Timer reads from it; None for none, or for a string the Timer
    refuses itself. Raises OverflowError / TypeError where timedelta does (max_time_problem names those)."""
    if isinstance(max_time, timedelta):
        return max_time
    if isinstance(max_time, Mapping):
        return timedelta(**max_time)
    if isinstance(max_time, str) and (match := MAX_TIME_FORMAT.fullmatch(max_time.strip())):
        days, hours, minutes, seconds = map(int, match.groups())
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return None


def max_time_problem(max_time: Any, subcommand: str = "fit") -> str | None:
    """``trainer.max_time`` (DD:HH:MM:SS, a dict of timedelta's units or a timedelta) that fit cannot train with: zero
    or negative (Lightning's Timer stops fit before its first step: the model loaded, no adapter, exit 0), a dict key
    timedelta does not take or a duration it cannot hold (a TypeError / OverflowError traceback when the Trainer is
    built, for every subcommand). Other strings are left to the Timer, which refuses them in one line."""
    if max_time is None:
        return None
    fix = 'DD:HH:MM:SS (e.g. 00:12:00:00) or {"hours": 12}'
    if isinstance(max_time, Mapping) and (unknown := [key for key in max_time if key not in MAX_TIME_UNITS]):
        return (f"trainer.max_time={dict(max_time)} is not a duration: {', '.join(map(str, unknown))} is not "
                f"a unit of time (the keys are {', '.join(MAX_TIME_UNITS)}); give {fix}")
    try:
        duration = max_time_duration(max_time)
    except (OverflowError, TypeError):  # beyond timedelta's 999999999 days; a value that is no number
        return (f"trainer.max_time={max_time} is not a duration Python's timedelta can hold (at most 999999999 "
                f"days, whole numbers): give {fix}, or leave it out (null) for no time limit")
    if subcommand == "fit" and duration is not None and duration <= timedelta(0):
        return (f"trainer.max_time={max_time} trains no step (Lightning's Timer stops fit before the first, after "
                f"the model loaded, without an adapter or checkpoint): give a positive duration, {fix}, or leave it "
                f"out (null) for no time limit")
    return None


def dd_hh_mm_ss(seconds: int) -> str:
    """Whole seconds as trainer.max_time is written (DD:HH:MM:SS)."""
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days:02d}:{hours:02d}:{minutes:02d}:{seconds:02d}"


def timer_setting(trainer: Mapping[str, Any]) -> tuple[str, Any]:
    """Which setting bounds the run's training time, and its value: a Lightning ``Timer`` among trainer.callbacks
    (Lightning then ignores trainer.max_time), else trainer.max_time. trainer.callbacks may hold one callback
    rather than a list (LightningCLI's type is a list or one callback)."""
    callbacks = trainer.get("callbacks") or []
    for callback in callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]:
        get = callback.get if isinstance(callback, Mapping) else functools.partial(getattr, callback)
        if str(get("class_path", "")) in TIMER_CLASSES:
            init_args = get("init_args", None) or {}
            duration = init_args.get("duration") if isinstance(init_args, Mapping) else getattr(
                init_args, "duration", None)
            return "the Timer callback's duration", duration
    return "trainer.max_time", trainer.get("max_time")


def spent_time_problem(trainer: Mapping[str, Any], checkpoint: Mapping[str, Any], ckpt_path: Any) -> str | None:
    """A resumed fit whose time limit its checkpoint's run has used up already. Lightning's Timer (which
    trainer.max_time sets up) stores the training time in the checkpoint and counts on from it when resumed, on
    purpose (its on_fit_start stops a run "whose timer is already depleted"): the limit is the run's total, across
    resumes. With no more than that left, fit loaded the model and stopped before its first step, exit 0, no adapter,
    only an info line "Time limit reached"."""
    name, setting = timer_setting(trainer)
    try:
        limit = max_time_duration(setting)
    except (OverflowError, TypeError):
        return None  # max_time_problem names it
    state = (checkpoint.get("callbacks") or {}).get("Timer") or {}
    spent = (state.get("time_elapsed") or {}).get("train")
    if limit is None or not isinstance(spent, (int, float)):
        return None
    if not math.isfinite(spent):  # a damaged state: no total can be named (Lightning stops at once on inf)
        return (f"--ckpt_path {ckpt_path}: its Timer state (callbacks.Timer.time_elapsed.train) holds {spent} seconds, "
                f"not a time spent, so {name}={setting} cannot be counted on from it: resume from another checkpoint, "
                f"or leave {name} out (null) for no time limit")
    if spent < limit.total_seconds():
        return None
    more = math.ceil(limit.total_seconds())
    total = dd_hh_mm_ss(math.ceil(spent) + more)
    example = f"--trainer.max_time {total}" if name == "trainer.max_time" else f"{total} (in trainer.callbacks)"
    return (f"--ckpt_path {ckpt_path}: its run has trained for {dd_hh_mm_ss(int(spent))} (DD:HH:MM:SS) already, "
            f"and {name}={setting} is no more than that, so the resumed fit would stop before its first step. "
            f"Lightning's Timer counts the run's whole training time, resumes included (the checkpoint holds the "
            f"time spent): give the total, e.g. {example} to train {dd_hh_mm_ss(more)} more, or leave it out "
            f"(null) for no time limit")


# numpy's seeds (lightning.fabric.utilities.seed.seed_everything refuses the others with a traceback)
SEED_RANGE = (0, 2**32 - 1)


def seed_problem(seed: Any) -> str | None:
    """``seed_everything`` outside the seeds numpy accepts (true: a random one; false: none)."""
    if _number(seed) and not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        return (f"seed_everything must be a whole number from {SEED_RANGE[0]} to {SEED_RANGE[1]} (numpy's seeds), "
                f"true (a random seed) or false (none), got {seed}")
    return None


def ckpt_path_problem(ckpt_path: Any, subcommand: str = "fit") -> str | None:
    """``--ckpt_path`` that names no checkpoint: a missing path, or a directory that is not a DeepSpeed checkpoint
    (which has ``latest`` or ``checkpoint/`` in it); Lightning's own names (last, best, ...) and URLs are left to
    Lightning. A file's contents are read by the resume check (resume.load_checkpoint_file)."""
    if not ckpt_path or not isinstance(ckpt_path, (str, os.PathLike)):
        return None
    text = str(ckpt_path)
    if text in SPECIAL_CKPT_PATHS or text.startswith("registry:") or "://" in text:
        return None
    path = Path(text)
    adapter = path if path.is_dir() else path.parent
    if (adapter / "adapter_config.json").is_file() and not (path.is_file() and path.suffix == ".ckpt"):
        run = adapter.parent / "checkpoints"
        resume = (f"; to resume its run give one of {run}'s .ckpt files" if list(run.glob("*.ckpt")) else "")
        return (f"--ckpt_path {text} is {'in ' if path.is_file() else ''}an adapter directory (a peft adapter, "
                f"not a training checkpoint): to {subcommand} with it give --model.adapter_dir {adapter}{resume}")
    if path.is_file():
        return None
    if path.is_dir():
        if (path / "latest").is_file() or (path / "checkpoint").is_dir():
            return None  # DeepSpeed's layout
        found = sorted(path.glob("*.ckpt")) or sorted(path.glob("*/checkpoints/*.ckpt"))
        hint = (f"e.g. {found[-1] if not (path / 'last.ckpt').is_file() else path / 'last.ckpt'}" if found else
                "a run's checkpoints are <default_root_dir>/lightning_logs/version_N/checkpoints/*.ckpt")
        return (f"--ckpt_path {text} is a directory, not a checkpoint: give a .ckpt file ({hint}), or a DeepSpeed "
                f"checkpoint directory")
    instead = ("to start a new run" if subcommand == "fit" else
               f"to {subcommand} the model as configured (model.adapter_dir for a trained adapter)")
    return (f"--ckpt_path {text}: no such file; give an existing .ckpt file (a run's checkpoints are "
            f"<default_root_dir>/lightning_logs/version_N/checkpoints/*.ckpt), or leave --ckpt_path out {instead}")


def check_val_check_interval(trainer) -> None:
    """Refuse ``trainer.val_check_interval`` (a number of batches) above the training batches of an epoch while
    ``check_val_every_n_epoch`` counts within epochs, once the data is set up and before the model loads: Lightning
    finds it after the model loaded and stops with a ValueError's traceback. The same condition as Lightning's
    (fit_loop.setup_data), the batches counted by our DataModule (train_batches_per_epoch, as _scheduled_steps)."""
    interval = getattr(trainer, "val_check_interval", None)
    per_epoch = getattr(getattr(trainer, "datamodule", None), "train_batches_per_epoch", None)
    if (not isinstance(interval, int) or isinstance(interval, bool) or per_epoch is None
            or getattr(trainer, "check_val_every_n_epoch", None) is None
            or not getattr(trainer, "limit_val_batches", 1.0)):
        return
    batches = per_epoch(trainer.world_size)
    limit = getattr(trainer, "limit_train_batches", 1.0)
    batches = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
    if interval > batches:
        raise UserError(f"trainer.val_check_interval={interval} (training batches between validations) is more than "
                        f"the {batches} training batches of an epoch, and trainer.check_val_every_n_epoch="
                        f"{trainer.check_val_every_n_epoch} counts them within an epoch: set "
                        f"trainer.check_val_every_n_epoch null to count across epochs, or trainer.val_check_interval "
                        f"to at most {batches}")
