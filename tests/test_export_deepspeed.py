"""export-adapter on DeepSpeed checkpoint directories: a real one from our training (written on the CPU) exports,
and a file whose pickle names any global our runs never write is refused before it is unpickled."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from lightning_review.export import (UnsafeCheckpointError, deepspeed_checkpoint_globals, export_adapter,
                                     read_training_checkpoint)
from tests.conftest import ROOT, run_cli

# Our training under Lightning's DeepSpeedStrategy, as configs/13b.yaml sets it (ZeRO-2, bf16, frozen base left
# out), on DeepSpeed's CPU accelerator: Lightning allows the strategy on CUDA only, so its device checks are
# bypassed here; one process needs none of the shared-memory collectives DeepSpeed would compile for the CPU.
WRITE_DEEPSPEED_CHECKPOINT = """
import os, sys
os.environ["DS_ACCELERATOR"] = "cpu"
import torch
import deepspeed.comm.torch
import lightning as L
import lightning.pytorch.strategies.deepspeed as lightning_deepspeed
from lightning.pytorch.strategies import DDPStrategy, DeepSpeedStrategy
from lightning_review import LongQLoRAModule, ReviewDataModule

deepspeed.comm.torch.build_shm_op = lambda: None
lightning_deepspeed._validate_device_index_selection = lambda devices: None  # CPU devices have no index


class CPUDeepSpeed(DeepSpeedStrategy):
    def setup_environment(self):
        DDPStrategy.setup_environment(self)  # without DeepSpeedStrategy's CUDA-only check

    @property
    def root_device(self):
        return torch.device("cpu", 0)  # DeepSpeed reads the device's index as its rank


base, out = sys.argv[1], sys.argv[2]
data = ReviewDataModule(tokenizer_dir=base, max_seq_length=256, batch_size=2, val_fraction=0.1, seed=7)
model = LongQLoRAModule(checkpoint_dir=base, lora_r=4, lora_dropout=0.2, max_seq_length=256, s2_group_size=32,
                        warmup_steps=2, learning_rate=1e-2)
strategy = CPUDeepSpeed(stage=2, exclude_frozen_parameters=True, process_group_backend="gloo")
trainer = L.Trainer(accelerator="cpu", devices=1, precision="bf16-mixed", strategy=strategy, max_steps=2,
                    logger=False, enable_progress_bar=False, enable_checkpointing=False, limit_val_batches=0,
                    enable_model_summary=False, default_root_dir=os.path.dirname(out))
trainer.fit(model, datamodule=data)
trainer.save_checkpoint(out)
"""


@pytest.fixture(scope="module")
def deepspeed_checkpoint(tiny_llama_dir, tmp_path_factory):
    """The checkpoint directory DeepSpeed writes for a 2-step run of ours (its own process: DeepSpeed sets up
    torch.distributed, which would outlive the test here)."""
    root = tmp_path_factory.mktemp("deepspeed_run")
    out = root / "last.ckpt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", WRITE_DEEPSPEED_CHECKPOINT, str(tiny_llama_dir), str(out)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "latest").is_file()
    return out


def checkpoint_files(checkpoint):
    return sorted((checkpoint / (checkpoint / "latest").read_text().strip()).glob("*.pt"))


def assert_undone():
    """torch.load is torch's again, and the DeepSpeed classes were allowed for the consolidation only."""
    assert torch.load is torch.serialization.load
    assert not set(deepspeed_checkpoint_globals()) & set(torch.serialization.get_safe_globals())


def test_our_deepspeed_checkpoint_needs_exactly_the_allowed_globals(deepspeed_checkpoint):
    found = {name for f in checkpoint_files(deepspeed_checkpoint)
             for name in torch.serialization.get_unsafe_globals_in_checkpoint(f)}
    assert found == {f"{c.__module__}.{c.__qualname__}" for c in deepspeed_checkpoint_globals()}


def test_our_deepspeed_checkpoint_exports_with_the_weights_deepspeed_reads(deepspeed_checkpoint, tmp_path):
    from lightning.pytorch.utilities.deepspeed import convert_zero_checkpoint_to_fp32_state_dict

    safe = read_training_checkpoint(deepspeed_checkpoint)
    assert_undone()
    plain = convert_zero_checkpoint_to_fp32_state_dict(deepspeed_checkpoint, tmp_path / "plain.pt")  # pickle: ours
    assert safe["state_dict"].keys() == plain["state_dict"].keys() and safe["state_dict"]
    for name, tensor in plain["state_dict"].items():
        assert torch.equal(safe["state_dict"][name], tensor), name
    assert safe["hyper_parameters"] == plain["hyper_parameters"]

    proc = run_cli("export-adapter", f"--checkpoint={deepspeed_checkpoint}", f"--output_dir={tmp_path / 'a'}",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()


class Payload:
    """Unpickled, it makes the directory ``path``: what a hostile file could do instead."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


class Note:
    """A harmless class of no DeepSpeed checkpoint: refused all the same."""


def hostile_copy(deepspeed_checkpoint, tmp_path, which, payload, legacy=False):
    """A copy of the checkpoint with ``payload`` added to its model-states or optimizer-states file."""
    copy = tmp_path / "ds"
    shutil.copytree(deepspeed_checkpoint, copy)
    target = next(f for f in checkpoint_files(copy) if which in f.name)
    with torch.serialization.safe_globals(deepspeed_checkpoint_globals()):
        content = torch.load(target, weights_only=True)
    torch.save({**content, "extra": payload}, target, _use_new_zipfile_serialization=not legacy)
    return copy, target


# The legacy (not zip) format only in the model-states file: DeepSpeed memory-maps the optimizer states, which
# torch refuses for that format before unpickling anything (named a corrupt directory, and nothing runs either).
@pytest.mark.parametrize("which, kind, legacy, name", [
    ("model_states", "payload", False, "posix.mkdir"), ("optim_states", "payload", False, "posix.mkdir"),
    ("model_states", "payload", True, "posix.mkdir"),
    ("model_states", "note", False, f"{__name__}.Note"), ("optim_states", "note", False, f"{__name__}.Note")])
def test_a_file_naming_another_global_is_refused_unrun(deepspeed_checkpoint, tmp_path, which, kind, legacy, name):
    ran = tmp_path / "payload_ran"
    copy, target = hostile_copy(deepspeed_checkpoint, tmp_path, which, Payload(ran) if kind == "payload" else Note(),
                                legacy)
    with pytest.raises(UnsafeCheckpointError) as refused:
        export_adapter(str(copy), str(tmp_path / "adapter"))
    assert str(refused.value) == (f"{target}: refused, its pickle needs {name}, which no DeepSpeed checkpoint of a "
                                  "lightning_review run holds (loading it could run code); convert only checkpoints "
                                  "from your own runs")
    assert not ran.exists() and not (tmp_path / "adapter").exists()
    assert_undone()


def test_the_refusal_is_one_line_of_the_command(deepspeed_checkpoint, tmp_path):
    ran = tmp_path / "payload_ran"
    copy, target = hostile_copy(deepspeed_checkpoint, tmp_path, "model_states", Payload(ran))
    proc = run_cli("export-adapter", f"--checkpoint={copy}", f"--output_dir={tmp_path / 'a'}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {target}: refused, its pickle needs posix.mkdir, which no DeepSpeed checkpoint of a lightning_review "
        "run holds (loading it could run code); convert only checkpoints from your own runs")
    assert not ran.exists() and not (tmp_path / "a").exists()


def test_a_file_the_safe_loader_cannot_read_is_named_corrupt_without_torchs_unsafe_advice(deepspeed_checkpoint,
                                                                                          tmp_path):
    """torch's weights-only refusal suggests ``weights_only=False``: advice that would run such a file's code."""
    import io
    import pickle

    from lightning_review.artifacts.checkpoint_files import CheckpointError
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION

    copy = tmp_path / "ds"
    shutil.copytree(deepspeed_checkpoint, copy)
    target = next(f for f in checkpoint_files(copy) if "model_states" in f.name)
    legacy = io.BytesIO()  # torch's legacy format, then a pickle whose opcode (PERSID) its safe loader refuses
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                                                    "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, legacy, protocol=2)
    target.write_bytes(legacy.getvalue() + b"\x80\x02(I1\nI2\ntP1\n.")
    with pytest.raises(CheckpointError) as refused:
        export_adapter(str(copy), str(tmp_path / "adapter"))
    assert str(refused.value) == (f"{copy}: a corrupt or incomplete DeepSpeed checkpoint directory (DeepSpeed cannot "
                                  "consolidate it: UnpicklingError: torch's weights-only loader cannot read it); use "
                                  "another checkpoint of the run, or copy this one again whole")
