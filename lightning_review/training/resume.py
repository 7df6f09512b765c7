"""Resuming a run exactly: the random state goes into the checkpoint, which is read safely (a changed configuration
is refused by lightning_review.artifacts.settings_check)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..artifacts.checkpoint_files import CheckpointError

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
