"""Resuming a run exactly: the random state goes into the checkpoint, which is read safely, a DeepSpeed directory
too (a changed configuration is refused by lightning_review.artifacts.settings_check)."""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts.checkpoint_files import CheckpointError
from ..artifacts.deepspeed_files import deepspeed_files_read_safely

RNG_KEY = "lightning_review_rng_states"
CHECKPOINT_HINT = "use another checkpoint of the run (its checkpoints/ directory keeps the newest ones, e.g. last.ckpt)"


def load_checkpoint_file(path: str | Path) -> dict:
    """A Lightning checkpoint file, read with ``weights_only=True``: tensors and plain values only, so a file from
    elsewhere can never run code. A file that torch cannot read this way is named as corrupt or not a checkpoint;
    torch's own message is not passed on, as it suggests ``weights_only=False``, which is unsafe on such a file."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointError(f"{path}: corrupt checkpoint, the file is empty (0 bytes), as when a run is killed "
                              f"while writing it; {CHECKPOINT_HINT}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # EOFError, UnpicklingError, RuntimeError (zip), IndexError, KeyError, ... by the bytes
        raise CheckpointError(f"{path}: corrupt or not a training checkpoint (torch cannot read it as one: "
                              f"{type(exc).__name__}); {CHECKPOINT_HINT}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a training checkpoint (no state_dict in it); {CHECKPOINT_HINT}")
    return checkpoint


def read_deepspeed_checkpoints_safely(strategy: Any) -> None:
    """Under Lightning's DeepSpeedStrategy, make its ``load_checkpoint`` (``--ckpt_path`` of fit, validate, test or
    predict) read through deepspeed_files_read_safely: it hands the directory to DeepSpeed's engine, whose loader
    unpickles with ``weights_only=False``. A .ckpt file is read with ``weights_only=True`` already
    (load_checkpoint_file, then torch's default in Lightning's load)."""
    from lightning.pytorch.strategies import DeepSpeedStrategy

    if not isinstance(strategy, DeepSpeedStrategy):
        return
    load = strategy.load_checkpoint

    @functools.wraps(load)
    def load_safely(checkpoint_path: Any, *args: Any, **kwargs: Any) -> dict:
        with deepspeed_files_read_safely(checkpoint_path):
            return load(checkpoint_path, *args, **kwargs)

    strategy.load_checkpoint = load_safely


def save_rng_states(checkpoint: dict) -> None:
    """torch (CPU and CUDA), Python and NumPy generators: LoRA dropout continues exactly where it stopped.

    Not Lightning's ``_collect_rng_states``: it stores a NumPy array, which checkpoints loaded with
    ``torch.load(weights_only=True)`` (Lightning's default) refuse. Here every state is a tensor, int or list.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()
    checkpoint[RNG_KEY] = {
        "torch": torch.get_rng_state(),
        "torch.cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
    }


def restore_rng_states(checkpoint: dict) -> None:
    states = checkpoint.get(RNG_KEY)
    if not states:
        return
    torch.set_rng_state(states["torch"])
    if states["torch.cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch.cuda"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
