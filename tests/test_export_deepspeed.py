"""export-adapter on DeepSpeed checkpoint directories: a real one from our training (written on the CPU) exports,
and a file whose pickle names any global our runs never write is refused before it is unpickled."""

import shutil

import pytest
import torch

from lightning_review.artifacts.checkpoint_files import CheckpointError
from lightning_review.errors import UserError
from lightning_review.artifacts.deepspeed_files import (UnsafeCheckpointError, deepspeed_checkpoint_globals,
                                                        refuse_unexpected_globals)
from lightning_review.export import export_adapter, read_training_checkpoint
from tests.conftest import run_cli
from tests.training.deepspeed_cpu import Payload, checkpoint_files, deepspeed_checkpoint, hostile_copy  # noqa: F401


def assert_undone():
    """torch.load is torch's again, and the DeepSpeed classes were allowed for the consolidation only."""
    assert torch.load is torch.serialization.load
    assert not set(deepspeed_checkpoint_globals()) & set(torch.serialization.get_safe_globals())


def test_our_deepspeed_checkpoint_needs_exactly_the_allowed_globals(deepspeed_checkpoint):
    """All but DynamicLossScaler, which only fp16 writes (read from DeepSpeed's source: deepspeed_files)."""
    found = {name for f in checkpoint_files(deepspeed_checkpoint)
             for name in torch.serialization.get_unsafe_globals_in_checkpoint(f)}
    allowed = {f"{c.__module__}.{c.__qualname__}" for c in deepspeed_checkpoint_globals()}
    assert found == allowed - {"deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler"}


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


class Note:
    """A harmless class of no DeepSpeed checkpoint: refused all the same."""


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
                                  "lightning_review run holds (loading it could run code); convert or resume only "
                                  "checkpoints from your own runs (one of yours that another DeepSpeed version "
                                  f"wrote: LIGHTNING_REVIEW_ALLOW_GLOBALS={name}, if you trust the file)")
    assert not ran.exists() and not (tmp_path / "adapter").exists()
    assert_undone()


def export_refusal(checkpoint, tmp_path) -> str:
    """export-adapter's one-line refusal of ``checkpoint`` on the command line (exit 1, no traceback, no output)."""
    proc = run_cli("export-adapter", f"--checkpoint={checkpoint}", f"--output_dir={tmp_path / 'a'}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "a").exists()
    return proc.stderr.strip().splitlines()[-1]


def test_the_refusal_is_one_line_of_the_command(deepspeed_checkpoint, tmp_path):
    ran = tmp_path / "payload_ran"
    copy, target = hostile_copy(deepspeed_checkpoint, tmp_path, "model_states", Payload(ran))
    assert export_refusal(copy, tmp_path) == (
        f"error: {target}: refused, its pickle needs posix.mkdir, which no DeepSpeed checkpoint of a lightning_review "
        "run holds (loading it could run code); convert or resume only checkpoints from your own runs (one of yours "
        "that another DeepSpeed version wrote: LIGHTNING_REVIEW_ALLOW_GLOBALS=posix.mkdir, if you trust the file)")
    assert not ran.exists()


def test_a_file_the_safe_loader_cannot_read_is_named_corrupt_without_torchs_unsafe_advice(deepspeed_checkpoint,
                                                                                          tmp_path):
    """torch's weights-only refusal suggests ``weights_only=False``: advice that would run such a file's code."""
    import io
    import pickle

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


def fp16_loss_scaler():
    """The loss scaler DeepSpeed's ZeRO-2 optimizer makes for fp16 with Lightning's default dynamic scaling
    (loss_scale=0), made as DeepSpeed makes it: fp16 itself does not run on the CPU."""
    from deepspeed.runtime.fp16.loss_scaler import CreateLossScaler
    from deepspeed.runtime.precision_config import DeepSpeedFP16Config

    return CreateLossScaler(dtype=torch.half, static_loss_scale=0, dynamic_scaling=True,
                            dynamic_loss_args=DeepSpeedFP16Config(enabled=True, loss_scale=0).dynamic_loss_scale_args())


def test_an_fp16_runs_dynamic_loss_scaler_is_allowed(deepspeed_checkpoint, tmp_path):
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler

    scaler = fp16_loss_scaler()
    assert type(scaler) is DynamicLossScaler
    alone = tmp_path / "scaler.pt"
    torch.save({"loss_scaler": scaler, "dynamic_loss_scale": True}, alone)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(alone) == [
        "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler"]  # not one of torch's own
    with torch.serialization.safe_globals(deepspeed_checkpoint_globals()):
        refuse_unexpected_globals(alone)  # the scan passes it
        loaded = torch.load(alone, weights_only=True)["loss_scaler"]
    assert type(loaded) is DynamicLossScaler and loaded.__dict__ == scaler.__dict__

    # Where an fp16 run has it: the optimizer states, in place of bf16's static LossScaler.
    copy = tmp_path / "ds"
    shutil.copytree(deepspeed_checkpoint, copy)
    target = next(f for f in checkpoint_files(copy) if "optim_states" in f.name)
    with torch.serialization.safe_globals(deepspeed_checkpoint_globals()):
        content = torch.load(target, weights_only=True)
    content["optimizer_state_dict"].update(loss_scaler=scaler, dynamic_loss_scale=True)
    torch.save(content, target)
    assert read_training_checkpoint(copy)["state_dict"]
    assert_undone()


def outside_tags(checkpoint, tmp_path):
    """``latest`` values that lead out of the directory, each to a complete copy of its tag directory: DeepSpeed
    would consolidate those without a word."""
    outside = tmp_path / "elsewhere"
    shutil.copytree(checkpoint / "checkpoint", outside)
    (checkpoint / "link").symlink_to(outside, target_is_directory=True)
    return {"../elsewhere": outside, str(outside): outside, "link": outside}


# A plain name that is missing is DeepSpeed's to report: tests/test_export.py (test_a_broken_deepspeed_directory...).
@pytest.mark.parametrize("tag", ["../elsewhere", "absolute", "link", "", ".", "..", "checkpoint/", "checkpoint/.."])
def test_a_latest_tag_that_is_not_a_directory_inside_is_refused_before_anything_loads(deepspeed_checkpoint, tmp_path,
                                                                                      tag, monkeypatch):
    copy = tmp_path / "ds"
    shutil.copytree(deepspeed_checkpoint, copy)
    outside_tags(copy, tmp_path)
    tag = str(tmp_path / "elsewhere") if tag == "absolute" else tag
    (copy / "latest").write_text(tag + "\n")
    read = []  # every file scanned or loaded
    monkeypatch.setattr(torch, "load", lambda f, *args, **kwargs: read.append(f))
    monkeypatch.setattr(torch.serialization, "get_unsafe_globals_in_checkpoint", lambda f: read.append(f) or [])
    with pytest.raises(CheckpointError) as refused:
        export_adapter(str(copy), str(tmp_path / "adapter"))
    assert str(refused.value) == (f"{copy / 'latest'}: refused, it names the tag {tag!r}, which is not a directory "
                                  f"inside {copy} (DeepSpeed would load the files it leads to); write the name of its "
                                  f"tag directory (checkpoint) into that file")
    assert not read and not (tmp_path / "adapter").exists()
    monkeypatch.undo()
    assert_undone()


def test_the_tag_refusal_is_one_line_of_the_command(deepspeed_checkpoint, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(deepspeed_checkpoint, copy)
    shutil.move(copy / "checkpoint", tmp_path / "elsewhere")  # no tag directory left inside
    (copy / "latest").write_text("../elsewhere")
    assert export_refusal(copy, tmp_path) == (
        f"error: {copy / 'latest'}: refused, it names the tag '../elsewhere', which is not a directory inside {copy} "
        "(DeepSpeed would load the files it leads to); it holds no tag directory: use another checkpoint of the run, "
        "or copy this one again whole")


def test_a_global_the_user_names_in_the_environment_is_allowed(deepspeed_checkpoint, tmp_path, monkeypatch):
    """The way through for a checkpoint of one's own that another DeepSpeed version wrote: the refusal's own name,
    given in LIGHTNING_REVIEW_ALLOW_GLOBALS, lets that global (and only it) load; it is not allowed after."""
    copy, _ = hostile_copy(deepspeed_checkpoint, tmp_path, "optim_states", Note())
    monkeypatch.setenv("LIGHTNING_REVIEW_ALLOW_GLOBALS",
                       f" deepspeed.utils.tensor_fragment.fragment_address, {__name__}.Note")
    export_adapter(str(copy), str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert Note not in torch.serialization.get_safe_globals()
    assert_undone()


def test_a_name_in_the_environment_that_does_not_import_is_named(deepspeed_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTNING_REVIEW_ALLOW_GLOBALS", "deepspeed.NoSuchClass")
    with pytest.raises(UserError, match=r"^LIGHTNING_REVIEW_ALLOW_GLOBALS: 'deepspeed.NoSuchClass' is not an "
                                        r"importable module.name"):
        export_adapter(str(deepspeed_checkpoint), str(tmp_path / "adapter"))
    assert not (tmp_path / "adapter").exists()
    assert_undone()
