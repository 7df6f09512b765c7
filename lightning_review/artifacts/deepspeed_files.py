"""DeepSpeed checkpoint directories read without running code: DeepSpeed's and Lightning's loaders unpickle every
file with ``torch.load(weights_only=False)``; export-adapter's consolidation and a resume under DeepSpeed both read
through deepspeed_files_read_safely instead, which also refuses a ``latest`` tag that leads out of the directory."""

from __future__ import annotations

import importlib
import os
import pickle
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from ..errors import UserError
from .checkpoint_files import CheckpointError

UNSAFE_GLOBAL = re.compile(r"GLOBAL (\S+) (?:was not an allowed global|whose module)")  # torch's refusal
LATEST_FILES = ("latest", "latest_universal")  # DeepSpeed's engine reads the second for universal checkpoints
ALLOW_GLOBALS = "LIGHTNING_REVIEW_ALLOW_GLOBALS"  # module.name, comma-separated: globals the user vouches for


class UnsafeCheckpointError(CheckpointError):
    """A DeepSpeed checkpoint file whose pickle names a global that a lightning_review run never writes."""

    def __init__(self, file: str | os.PathLike, name: str):
        super().__init__(f"{file}: refused, its pickle needs {name}, which no DeepSpeed checkpoint of a "
                         "lightning_review run holds (loading it could run code); convert or resume only checkpoints "
                         f"from your own runs (one of yours that another DeepSpeed version wrote: {ALLOW_GLOBALS}="
                         f"{name}, if you trust the file)")


def deepspeed_checkpoint_globals() -> list[type]:
    """The globals beyond torch's own safe ones in the files of a lightning_review run's DeepSpeed checkpoint, as
    found by writing one (ZeRO-2 in bf16 as configs/13b.yaml sets it, with the callbacks of a run:
    tests/training/deepspeed_cpu.py; fp32, and Adam offloaded, wrote the same): the ZeRO optimizer's loss scaler, its
    stage and its parameters' slice addresses, all in the optimizer states file; the model states file, with
    Lightning's client state (loops, callbacks, hyperparameters, the DataModule's position), needs none."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    # DynamicLossScaler: not seen (DeepSpeed has no fp16 on the CPU) but read from the source (DeepSpeed 0.19.8):
    # the ZeRO-1/2 optimizer saves its loss scaler object whole (runtime/zero/stage_1_and_2.py:3370,
    # ``state_dict[LOSS_SCALER] = self.loss_scaler``), which CreateLossScaler (runtime/fp16/loss_scaler.py:293)
    # makes a DynamicLossScaler in fp16 with dynamic scaling, Lightning's default (loss_scale=0). A plain data
    # class: no __reduce__, __setstate__ or __new__ of its own (nor in LossScalerBase, DeepSpeedConfigObject), so
    # torch's weights-only unpickler makes it with object.__new__ and sets its attributes (numbers, bools, a dtype).
    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


def globals_allowed_by_user() -> list[Any]:
    """The globals named in $LIGHTNING_REVIEW_ALLOW_GLOBALS (``module.name``, comma-separated), imported: the way
    through for a checkpoint of the user's own that holds a class no run of ours was seen to write (another
    DeepSpeed version's), allowed only because the user named it, as torch's ``add_safe_globals`` would."""
    allowed = []
    for name in filter(None, (part.strip() for part in os.environ.get(ALLOW_GLOBALS, "").split(","))):
        module, _, attribute = name.rpartition(".")
        try:
            allowed.append(getattr(importlib.import_module(module), attribute))
        except (ImportError, AttributeError, ValueError):
            raise UserError(f"{ALLOW_GLOBALS}: {name!r} is not an importable module.name (write it as the refusal "
                            f"names it, e.g. deepspeed.runtime.fp16.loss_scaler.LossScaler)") from None
    return allowed


def refuse_tag_outside(directory: str | os.PathLike) -> None:
    """CheckpointError when a ``latest`` file of the checkpoint directory names anything but an entry of it (a
    plain name, not a link leading out): DeepSpeed joins the tag to the directory unchecked, so ``../x``, an
    absolute path or such a link would load files from elsewhere. Read as DeepSpeed reads it (stripped). A plain
    name that is missing is left to DeepSpeed, which loads nothing then (export-adapter names the directory
    incomplete)."""
    directory = Path(directory)
    for name in LATEST_FILES:
        latest = directory / name
        if not latest.is_file():
            continue
        tag = latest.read_text(encoding="utf-8", errors="replace").strip()
        place = directory / tag
        if tag not in ("", ".", "..") and Path(tag).name == tag and (
                not os.path.lexists(place) or place.resolve().parent == directory.resolve()):
            continue
        tags = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.is_symlink()
                      and any(p.glob("*model_states.pt")))
        fix = (f"write the name of its tag directory ({', '.join(tags)}) into that file" if tags else
               "it holds no tag directory: use another checkpoint of the run, or copy this one again whole")
        raise CheckpointError(f"{latest}: refused, it names the tag {tag!r}, which is not a directory inside "
                              f"{directory} (DeepSpeed would load the files it leads to); {fix}")


@contextmanager
def deepspeed_files_read_safely(checkpoint: str | os.PathLike) -> Iterator[None]:
    """The ``latest`` tag of ``checkpoint`` (a DeepSpeed directory) checked (refuse_tag_outside); then every
    ``torch.load`` in the block loads with ``weights_only=True``, deepspeed_checkpoint_globals allowed for the
    block only, and a file naming any other global raises UnsafeCheckpointError before it is unpickled.

    Why a patch: DeepSpeed's zero_to_fp32, its engine's checkpoint loader and Lightning's consolidation call
    ``torch.load(..., weights_only=False)`` (plain pickle, which runs whatever code a file names) with the flag
    hard-coded, and all call it by that name. The patch is process-wide while the block runs, which can only make
    other loads stricter."""
    if Path(checkpoint).is_dir():
        refuse_tag_outside(checkpoint)
    load = torch.load

    def weights_only_load(f: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(f, (str, os.PathLike)):
            refuse_unexpected_globals(f)
        try:
            return load(f, *args, **{**kwargs, "weights_only": True})
        except Exception as exc:  # a global the scan could not see (a file not in torch's zip format)
            found = UNSAFE_GLOBAL.search(str(exc))
            if found:
                raise UnsafeCheckpointError(f, found.group(1)) from None
            if str(exc).startswith("Weights only load failed"):  # its advice, weights_only=False, is unsafe here
                raise pickle.UnpicklingError("torch's weights-only loader cannot read it") from None
            raise

    with torch.serialization.safe_globals(deepspeed_checkpoint_globals() + globals_allowed_by_user()), \
            mock.patch.object(torch, "load", weights_only_load):
        yield


def refuse_unexpected_globals(file: str | os.PathLike) -> None:
    """UnsafeCheckpointError for a file whose pickle names a global that neither torch's safe loader nor the
    safe_globals in force allow, found by reading the pickle without running it; a file torch cannot scan so (not
    its zip format, or cut short) is left to the weights-only load, which refuses or fails on it too."""
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(file)
    except Exception:
        return
    if unsafe:
        raise UnsafeCheckpointError(file, ", ".join(sorted(unsafe)))
