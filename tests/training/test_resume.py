"""Exact resume: a run killed after a checkpoint and resumed ends where the uninterrupted run ends."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_review import LongQLoRAModule, ReviewDataModule
from lightning_review.artifacts.checkpoint_files import CheckpointError
from lightning_review.training.module import model_setting_differences
from lightning_review.artifacts.settings_check import ConfigMismatchError
from lightning_review.training.resume import load_checkpoint_file
from tests.conftest import ROOT, run_cli

N = 3  # checkpoint cadence; the runs below train 2N steps


class RecordBatches(L.Callback):
    def __init__(self):
        self.ids, self.losses = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.ids.append(batch["ids"])
        self.losses.append(float(outputs["loss"]))


class Killed(Exception):
    pass


class KillAfter(L.Callback):
    """Dies in the middle of step ``step`` + 1, after the checkpoint of step ``step``: like a SIGKILL there."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step + 1:
            raise Killed  # an unplanned stop: no checkpoint is written for it


def run(tiny_llama_dir, root, max_steps, callbacks, ckpt_path=None, trainer_kw=None, **model_kw):
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=256, batch_size=2, val_fraction=0.1,
                            seed=7)
    model = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=4, lora_dropout=0.2, max_seq_length=256,
                            s2_group_size=32, warmup_steps=2, learning_rate=1e-3, **model_kw)
    checkpoint = ModelCheckpoint(dirpath=root, every_n_train_steps=N, save_top_k=-1)
    trainer = L.Trainer(**{"accelerator": "cpu", **(trainer_kw or {})}, max_steps=max_steps, logger=False,
                        enable_progress_bar=False, limit_val_batches=0, callbacks=[checkpoint, *callbacks],
                        default_root_dir=root, enable_model_summary=False)
    L.seed_everything(0)
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    return model, trainer


# max_epochs set makes Lightning build the train loader before it reads the checkpoint (the scheduler asks for
# estimated_stepping_batches): the case where the epoch used to start over on resume. (2, cosine) runs all that
# (2, constant_with_warmup) ran (Lightning's epoch-bounded loop, a resume inside epoch 0) plus the step count the
# cosine schedule asks for and a learning rate that still moves at the resume (constant_with_warmup's is flat after
# its 2 warmup steps), so (2, constant_with_warmup) was dropped as its repeat.
@pytest.mark.parametrize("max_epochs, scheduler", [(None, "constant_with_warmup"), (2, "cosine")])
def test_killed_and_resumed_run_equals_the_uninterrupted_one(tiny_llama_dir, tmp_path, max_epochs, scheduler):
    trainer_kw = {"max_epochs": max_epochs}
    seen_straight = RecordBatches()
    straight, _ = run(tiny_llama_dir, tmp_path / "a", 2 * N, [seen_straight], trainer_kw=trainer_kw,
                      lr_scheduler=scheduler)

    seen_before = RecordBatches()
    with pytest.raises(Killed):
        run(tiny_llama_dir, tmp_path / "b", 2 * N, [seen_before, KillAfter(N)], trainer_kw=trainer_kw,
            lr_scheduler=scheduler)
    ckpt = tmp_path / "b" / f"epoch=0-step={N}.ckpt"
    assert ckpt.is_file()
    seen_after = RecordBatches()
    resumed, trainer = run(tiny_llama_dir, tmp_path / "b", 2 * N, [seen_after], ckpt_path=str(ckpt),
                           trainer_kw=trainer_kw, lr_scheduler=scheduler)

    assert trainer.global_step == 2 * N
    # The same examples in the same order; the batch of step N+1 that died with the process is trained once.
    assert seen_before.ids[:N] + seen_after.ids == seen_straight.ids
    assert len({i for batch in seen_straight.ids for row in batch for i in row}) == \
        sum(len(row) for batch in seen_straight.ids for row in batch)  # no example twice within the epoch
    # Same trainable weights, bit for bit: optimizer, scheduler, data order and dropout RNG all continued.
    a, b = straight.trainable_state_dict(), resumed.trainable_state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("change, message", [
    ({"lora_alpha": 32}, "model.lora_alpha: 16 in the checkpoint, 32 now"),
    ({"model_max_length": 512}, "model.model_max_length"),
])
def test_resuming_with_another_model_config_is_refused(tiny_llama_dir, tmp_path, change, message):
    run(tiny_llama_dir, tmp_path, N, [])
    ckpt = tmp_path / f"epoch=0-step={N}.ckpt"
    with pytest.raises(ConfigMismatchError, match=message):
        run(tiny_llama_dir, tmp_path, 2 * N, [], ckpt_path=str(ckpt), **change)


def test_resuming_with_other_data_settings_is_refused(tiny_llama_dir, tmp_path):
    run(tiny_llama_dir, tmp_path, N, [])
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=256, batch_size=2, val_fraction=0.1,
                            seed=8)
    model = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=4, lora_dropout=0.2, max_seq_length=256,
                            s2_group_size=32, warmup_steps=2, learning_rate=1e-3)
    trainer = L.Trainer(accelerator="cpu", max_steps=2 * N, logger=False, enable_progress_bar=False,
                        limit_val_batches=0, default_root_dir=tmp_path, enable_checkpointing=False)
    with pytest.raises(ConfigMismatchError, match="data.seed: 7 in the checkpoint, 8 now"):
        trainer.fit(model, datamodule=data, ckpt_path=str(tmp_path / f"epoch=0-step={N}.ckpt"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="DeepSpeed runs on CUDA GPUs (the GPU machine runs this)")
def test_deepspeed_zero2_resume_continues_the_run(tiny_llama_dir, tmp_path):
    from lightning.pytorch.strategies import DeepSpeedStrategy

    from lightning_review.training.resume import read_deepspeed_checkpoints_safely

    def trainer_kw():
        strategy = DeepSpeedStrategy(stage=2, exclude_frozen_parameters=True)
        read_deepspeed_checkpoints_safely(strategy)  # as ReviewCLI does: a GPU-written checkpoint loads weights-only
        return {"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed", "max_epochs": 2, "strategy": strategy}

    seen_straight = RecordBatches()
    straight, _ = run(tiny_llama_dir, tmp_path / "a", 2 * N, [seen_straight], trainer_kw=trainer_kw(),
                      lr_scheduler="cosine")
    ckpt = tmp_path / "a" / f"epoch=0-step={N}.ckpt"
    seen_after = RecordBatches()
    resumed, trainer = run(tiny_llama_dir, tmp_path / "b", 2 * N, [seen_after], ckpt_path=str(ckpt),
                           trainer_kw=trainer_kw(), lr_scheduler="cosine")
    print("losses straight", seen_straight.losses, "resumed", seen_after.losses)
    a, b = straight.trainable_state_dict(), resumed.trainable_state_dict()
    diffs = {name: (a[name].float() - b[name].float()).abs().max().item() for name in a}
    print("largest weight differences", sorted(diffs.items(), key=lambda kv: -kv[1])[:5])
    assert trainer.global_step == 2 * N
    assert seen_straight.ids[N:] == seen_after.ids
    # GPU kernels are not bitwise deterministic: the continuation agrees to bf16 rounding, not bit for bit.
    assert seen_after.losses == pytest.approx(seen_straight.losses[N:], abs=2e-2)
    assert max(diffs.values()) < 1e-2


@pytest.fixture(scope="module")
def cli_checkpoint(tiny_llama_dir, tmp_path_factory):
    """last.ckpt of a 2-step run of the command line (lora_r 8, lora_alpha 16, learning_rate 0.002)."""
    root = tmp_path_factory.mktemp("cli_run")
    proc = run_cli("fit", "-c", str(ROOT / "configs" / "demo.yaml"), "--trainer.max_steps=2",
                   "--trainer.limit_val_batches=0", f"--trainer.default_root_dir={root}", cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next(root.rglob("last.ckpt"))


def resume_cli(ckpt, *flags, max_steps=3):
    root = ckpt.parents[3]
    return run_cli("fit", "-c", str(ROOT / "configs" / "demo.yaml"), f"--trainer.max_steps={max_steps}",
                   "--trainer.limit_val_batches=0", f"--trainer.default_root_dir={root}", f"--ckpt_path={ckpt}",
                   *flags, cwd=root)


def test_command_line_resume_with_other_model_flags_is_refused_listing_them(cli_checkpoint):
    """LightningCLI loads a checkpoint's hyperparameters over the user's flags: lora_r 16 used to run on with 8."""
    proc = resume_cli(cli_checkpoint, "--model.lora_r=16", "--model.learning_rate=0.01", "--model.lora_alpha=32")
    assert proc.returncode == 1
    assert "model.lora_r: 8 in the checkpoint, 16 now" in proc.stderr
    assert "model.learning_rate: 0.002 in the checkpoint, 0.01 now" in proc.stderr
    assert "model.lora_alpha: 16 in the checkpoint, 32 now" in proc.stderr
    assert "Traceback" not in proc.stderr and "Restored all states" not in proc.stdout + proc.stderr


def test_command_line_resume_keeps_the_settings_that_may_change(cli_checkpoint):
    """The same settings resume; one that may change on a resume (gradient checkpointing) is the user's, not the
    checkpoint's."""
    proc = resume_cli(cli_checkpoint, "--model.gradient_checkpointing=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Restored all states" in proc.stdout + proc.stderr
    newest = max(cli_checkpoint.parents[2].rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
    ckpt = torch.load(newest, weights_only=True)
    assert ckpt["global_step"] == 3 and ckpt["hyper_parameters"]["gradient_checkpointing"] is False


@pytest.mark.parametrize("content", [b"", bytes(range(256)) * 8])
def test_corrupt_checkpoint_file_is_named_without_unsafe_advice(tmp_path, content):
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint_file(ckpt)
    message = str(error.value)
    assert message.startswith(f"{ckpt}: corrupt") and "weights_only=False" not in message


def test_command_line_resume_from_a_corrupt_checkpoint_is_one_clear_line(tmp_path):
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(bytes(range(256)) * 8)  # torch's own error advises weights_only=False: unsafe on such a file
    proc = run_cli("fit", "-c", str(ROOT / "configs" / "demo.yaml"), f"--trainer.default_root_dir={tmp_path}",
                   f"--ckpt_path={ckpt}", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {ckpt}: corrupt or not a training checkpoint")
    assert "Traceback" not in proc.stderr and "weights_only" not in proc.stderr


def test_settings_of_lightning_cli_and_resumable_ones_are_no_difference():
    saved = {"lora_r": 8, "kernels": "auto", "_instantiator": "lightning.pytorch.cli.instantiate_module"}
    assert model_setting_differences(saved, {"lora_r": 8, "kernels": "none"}) == []
    assert model_setting_differences(saved, {"lora_r": 16, "kernels": "auto"}) == [
        "model.lora_r: 8 in the checkpoint, 16 now"]


def test_a_setting_added_after_the_checkpoint_is_no_difference_at_its_default():
    """A checkpoint written before ``data.task`` existed resumes when the run keeps the default; another value, or a
    recorded one that differs, is still refused."""
    from lightning_review.data.datamodule import ReviewDataModule
    from lightning_review.artifacts.settings_check import config_differences, parameter_defaults

    defaults = parameter_defaults(ReviewDataModule)
    assert defaults["task"] == "review"
    saved = {"max_seq_length": 512}
    assert config_differences(saved, {"max_seq_length": 512, "task": "review"}, "data", defaults=defaults) == []
    assert config_differences(saved, {"max_seq_length": 512, "task": "text"}, "data", defaults=defaults) == [
        "data.task: None in the checkpoint, 'text' now"]
    assert config_differences({"task": "text"}, {"task": "review"}, "data", defaults=defaults) == [
        "data.task: 'text' in the checkpoint, 'review' now"]
