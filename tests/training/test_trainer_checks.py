"""Bad trainer settings and --ckpt_path on fit / validate / test / predict: one line naming the setting and the fix,
a non-zero exit and no traceback, before the model loads (training.trainer_checks, trainer_cli.ReviewCLI)."""

import sys
from datetime import timedelta
from types import SimpleNamespace

import pytest

from lightning_review import cli
from lightning_review.errors import UserError
from lightning_review.training.guard import NonFiniteLossError, non_finite_advice
from lightning_review.training.module import LongQLoRAModule
from lightning_review.training.trainer_checks import ckpt_path_problem, max_time_problem, trainer_problems
from tests.conftest import ROOT

DEMO = ["-c", str(ROOT / "configs" / "demo.yaml"), "--data.max_seq_length=128", "--model.model_max_length=null"]


@pytest.fixture
def no_model_load(monkeypatch):
    """The model must not load: every check here comes before it."""
    def load(self):
        raise AssertionError("the model loaded before the bad setting was refused")

    monkeypatch.setattr(LongQLoRAModule, "configure_model", load)
    monkeypatch.setattr(sys, "argv", ["lightning_review"])  # the command is cli.main's args alone


def fails_with(args) -> str:
    with pytest.raises(SystemExit) as done:
        cli.main(args)
    message = str(done.value.code)
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in message, message
    return message


@pytest.mark.parametrize("flags, expected", [
    (["--trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches must be >= 1"),
    (["--trainer.accumulate_grad_batches=-2"], "trainer.accumulate_grad_batches must be >= 1"),  # silently ran
    (["--trainer.max_steps=0"], "trainer.max_steps=0 trains no step"),
    (["--trainer.max_epochs=0", "--trainer.max_steps=-1"], "trainer.max_epochs=0 trains no step"),
    (["--trainer.precision=64-true"], "trainer.precision=64-true is not supported"),
    (["--trainer.max_steps=-2"], "refused by Lightning: `max_steps` must be a non-negative integer or -1"),
    (["--trainer.limit_train_batches=0"], "trainer.limit_train_batches=0 trains no batch"),  # exit 0, no adapter
    (["--trainer.val_check_interval=0"], "trainer.val_check_interval must be > 0"),  # ZeroDivisionError
    (["--trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val must be >= 0"),  # ran, gradients flipped
    (["--trainer.check_val_every_n_epoch=0"], "trainer.check_val_every_n_epoch must be >= 1"),  # ZeroDivisionError
    (["--seed_everything=99999999999"], "seed_everything must be a whole number from 0 to 4294967295"),
    (["--trainer.strategy=deepspeed_stage_2"], "trainer.strategy=deepspeed_stage_2 runs on CUDA GPUs only"),
    # max_time zero: the Timer stopped fit before its first step, exit 0, no adapter
    (["--trainer.max_time=00:00:00:00"], "trainer.max_time=00:00:00:00 trains no step"),
    (['--trainer.max_time={"days": 0, "hours": 0, "minutes": 0, "seconds": 0}'], "trains no step"),
    (['--trainer.max_time={"seconds": -5}'], "trainer.max_time={'seconds': -5} trains no step"),
    # a TypeError / OverflowError traceback when the Trainer was built
    (['--trainer.max_time={"hour": 2}'], "trainer.max_time={'hour': 2} is not a duration: hour is not a unit of time"),
    (["--trainer.max_time=99999999999:00:00:00"], "is not a duration Python's timedelta can hold"),
    # ran, and stopped at the NaN-loss guard after the model loaded
    (["--trainer.precision=16-true"], "trainer.precision=16-true trains in float16 without loss scaling"),
    # the demo's accelerator is cpu: Lightning ran bf16-mixed instead, with a warning
    (["--trainer.precision=16-mixed"], "trainer.precision=16-mixed is float16 autocast, which Lightning does not "
                                       "run on a CPU"),
    (["--trainer.precision=16"], "trainer.precision=16 is float16 autocast, which Lightning does not run on a CPU"),
])
def test_a_bad_trainer_setting_is_one_line_before_the_model_loads(tmp_path, monkeypatch, no_model_load, flags,
                                                                  expected):
    monkeypatch.chdir(tmp_path)
    message = fails_with(["fit", *DEMO, f"--trainer.default_root_dir={tmp_path / 'run'}", *flags])
    assert expected in message


def test_a_default_root_dir_that_is_a_file_is_named(tmp_path, monkeypatch, no_model_load):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    message = fails_with(["fit", *DEMO, f"--trainer.default_root_dir={tmp_path / 'afile'}"])
    assert f"trainer.default_root_dir={tmp_path / 'afile'} is a file, not a directory" in message
    message = fails_with(["fit", *DEMO, f"--trainer.default_root_dir={tmp_path / 'afile' / 'sub'}"])
    assert f"is under {tmp_path / 'afile'}, which is a file" in message


def test_a_gpu_accelerator_without_a_gpu_names_the_cpu_flags(tmp_path, monkeypatch, no_model_load):
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = fails_with(["fit", *DEMO, f"--trainer.default_root_dir={tmp_path}", "--trainer.accelerator=gpu"])
    assert "trainer.accelerator=gpu, but torch sees no CUDA GPU here" in message
    assert "--trainer.accelerator cpu --trainer.precision 32-true" in message


@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict"])
def test_a_missing_ckpt_path_is_one_line_before_the_model_loads(tmp_path, monkeypatch, no_model_load, subcommand):
    monkeypatch.chdir(tmp_path)
    message = fails_with([subcommand, *DEMO, f"--trainer.default_root_dir={tmp_path}",
                          f"--ckpt_path={tmp_path / 'nope.ckpt'}"])
    assert f"--ckpt_path {tmp_path / 'nope.ckpt'}: no such file" in message
    assert ("to start a new run" in message) == (subcommand == "fit")


def test_a_directory_as_ckpt_path_is_refused_and_its_checkpoint_suggested(tmp_path, monkeypatch, no_model_load):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    message = fails_with(["fit", *DEMO, f"--trainer.default_root_dir={tmp_path}", f"--ckpt_path={tmp_path / 'empty'}"])
    assert f"--ckpt_path {tmp_path / 'empty'} is a directory, not a checkpoint: give a .ckpt file" in message
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    (tmp_path / "checkpoints" / "step=9.ckpt").write_bytes(b"")
    assert f"e.g. {tmp_path / 'checkpoints' / 'last.ckpt'}" in ckpt_path_problem(tmp_path / "checkpoints")


def test_ckpt_paths_lightning_resolves_itself_are_left_to_it(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "latest").write_text("global_step5")  # a DeepSpeed checkpoint directory
    (tmp_path / "a.ckpt").write_bytes(b"")  # its contents are the resume check's
    for path in ("last", "best", "hpc", "registry", "registry:model:v1", "s3://bucket/a.ckpt", None,
                 str(tmp_path / "ds"), str(tmp_path / "a.ckpt")):
        assert ckpt_path_problem(path) is None, path


def test_good_trainer_settings_pass(tmp_path):
    good = {"accumulate_grad_batches": 4, "max_steps": -1, "max_epochs": 2, "precision": "bf16-mixed",
            "accelerator": "cpu", "default_root_dir": str(tmp_path / "new" / "dir")}
    assert trainer_problems(good, "fit") == []
    # max_steps=0 is only a problem of fit: validate / test / predict train nothing anyway
    assert trainer_problems({**good, "max_steps": 0}, "validate") == []
    # 16-true only fails in training (16-mixed on a GPU: test_16_mixed_with_the_auto_accelerator_...)
    assert trainer_problems({**good, "precision": "16-true"}, "validate") == []
    assert trainer_problems({**good, "max_time": "00:00:00:00"}, "validate") == []


@pytest.mark.parametrize("max_time", ["00:12:00:00", " 01:00:00:00 ", "00:00:00:01", {"hours": 12},
                                      {"days": 0, "minutes": 1}, {"microseconds": 1}, timedelta(hours=1), None])
def test_a_positive_max_time_passes(max_time):
    assert max_time_problem(max_time, "fit") is None


@pytest.mark.parametrize("max_time", ["00:00:00:00", {"days": 0}, {"hours": 1, "minutes": -60}, timedelta(0),
                                      timedelta(seconds=-1)])
def test_a_zero_or_negative_max_time_is_refused_for_fit(max_time):
    assert max_time_problem(max_time, "fit").startswith(f"trainer.max_time={max_time} trains no step")
    assert max_time_problem(max_time, "validate") is None  # no training: the Timer stops nothing


def test_max_time_strings_lightning_refuses_itself_are_left_to_it():
    """Any other string is refused in one line by Lightning's Timer (instantiate_trainer catches its
    MisconfigurationException)."""
    for max_time in ("0:00:00", "-1:00:00:00", "1 day"):
        assert max_time_problem(max_time, "fit") is None


@pytest.mark.parametrize("cuda, refused", [(False, True), (True, False)])
def test_16_mixed_with_the_auto_accelerator_is_refused_only_without_a_gpu(monkeypatch, cuda, refused):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for accelerator in ("auto", None):
        problems = trainer_problems({"precision": "16-mixed", "accelerator": accelerator}, "fit")
        assert bool(problems) == refused, (accelerator, problems)


def test_a_non_finite_loss_is_a_users_error_with_the_fix_for_its_precision():
    """NonFiniteLossError ends the CLI in one line (a UserError), not a traceback; with float16 weights
    (trainer.precision 16-true: NaN at step 2 of the CPU demo) the fix is the precision, not the learning rate; and
    without a checkpoint there is nothing to resume from."""
    assert issubclass(NonFiniteLossError, UserError) and issubclass(NonFiniteLossError, RuntimeError)
    no_checkpoint = SimpleNamespace(checkpoint_callback=None, precision="16-true")
    advice = non_finite_advice(no_checkpoint)
    assert "trainer.precision=16-true trains in float16 without loss scaling" in advice
    assert advice.endswith("then run again.")
    saved = SimpleNamespace(checkpoint_callback=SimpleNamespace(last_model_path="x/last.ckpt"), precision="32-true")
    assert non_finite_advice(saved).startswith("Lower model.learning_rate")
    assert non_finite_advice(saved).endswith("then resume from it with --ckpt_path.")


def test_a_deepspeed_class_path_on_a_cpu_is_named_by_its_class(tmp_path, monkeypatch, no_model_load):
    monkeypatch.chdir(tmp_path)
    message = fails_with(["fit", "-c", str(ROOT / "configs" / "13b.yaml"), "--trainer.accelerator=cpu",
                          "--trainer.precision=32-true"])
    assert message == ("error: trainer.strategy=lightning.pytorch.strategies.DeepSpeedStrategy runs on CUDA GPUs "
                       "only, and this run has none (trainer.accelerator=cpu): on a CPU leave trainer.strategy out "
                       "(auto)")


def test_a_val_check_interval_longer_than_an_epoch_is_refused_before_the_model_loads(tmp_path, monkeypatch,
                                                                                     no_model_load):
    """Lightning found it in fit_loop.setup_data, after the model loaded: a ValueError's traceback. The demo data
    at 128 tokens a row makes 108 batches of 2 an epoch."""
    monkeypatch.chdir(tmp_path)
    message = fails_with(["fit", *DEMO, f"--trainer.default_root_dir={tmp_path}", "--trainer.val_check_interval=500"])
    assert ("trainer.val_check_interval=500 (training batches between validations) is more than the 108 training "
            "batches of an epoch, and trainer.check_val_every_n_epoch=1 counts them within an epoch: set "
            "trainer.check_val_every_n_epoch null") in message
    message = fails_with(["fit", *DEMO, f"--trainer.default_root_dir={tmp_path}", "--trainer.val_check_interval=500",
                          "--trainer.limit_train_batches=10"])
    assert "is more than the 10 training batches of an epoch" in message


def test_an_adapter_directory_as_ckpt_path_points_at_model_adapter_dir(tmp_path):
    """A run writes <log_dir>/adapter beside <log_dir>/checkpoints: the adapter (or its safetensors file) given as
    --ckpt_path was "a directory, not a checkpoint" / "no state_dict in it", without the flag that loads it."""
    adapter, checkpoints = tmp_path / "adapter", tmp_path / "checkpoints"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"x")
    assert ckpt_path_problem(adapter, "predict") == (
        f"--ckpt_path {adapter} is an adapter directory (a peft adapter, not a training checkpoint): to predict with "
        f"it give --model.adapter_dir {adapter}")
    checkpoints.mkdir()
    (checkpoints / "last.ckpt").write_bytes(b"")
    message = ckpt_path_problem(adapter / "adapter_model.safetensors", "fit")
    assert message.startswith(f"--ckpt_path {adapter / 'adapter_model.safetensors'} is in an adapter directory")
    assert message.endswith(f"to resume its run give one of {checkpoints}'s .ckpt files")


def test_a_checkpoint_without_this_models_weights_is_a_users_error(tiny_llama_dir):
    """A checkpoint that records no settings and lacks the trainable weights (another model's) was a RuntimeError's
    traceback after the model loaded; now a CheckpointError (one line in the CLI) with what to do."""
    import torch

    from lightning_review.artifacts.checkpoint_files import CheckpointError

    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=4, max_seq_length=128)
    module.model = torch.nn.Linear(2, 2)  # stands for the loaded model: its weights are the trainable ones
    with pytest.raises(CheckpointError, match=r"^the checkpoint lacks 2 of this model's 2 trainable weights "
                                              r"\(e.g. model.bias\): it was written by another model"):
        module.on_load_checkpoint({"state_dict": {}})


@pytest.mark.parametrize("setting, value", [("weight_decay", float("inf")), ("learning_rate", float("inf")),
                                            ("lora_alpha", float("inf"))])
def test_an_infinite_setting_is_refused_at_construction(tiny_llama_dir, setting, value):
    """--model.weight_decay=1e400 (or .inf in YAML) is an infinite float: it passed the '>= 0' range and the run
    ended in a NaN loss at step 2."""
    with pytest.raises(UserError, match=rf"^model.{setting} must be a finite number, got inf$"):
        LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), max_seq_length=128, **{setting: value})


def test_nan_or_infinity_as_a_float_flag_says_a_finite_float_is_expected(tmp_path, monkeypatch, capsys):
    """jsonargparse refuses 'inf' and 'nan' for a float: "expects float, got 'inf'" read as if inf were no float."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lightning_review"])
    for value in ("inf", "nan", "-Infinity"):
        with pytest.raises(SystemExit) as done:
            cli.main(["fit", *DEMO, f"--model.learning_rate={value}"])
        assert done.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"error: --model.learning_rate expects a finite float, got {value!r}")


def test_a_save_adapter_dirpath_that_is_a_file_is_refused_before_the_model_loads(tmp_path, monkeypatch,
                                                                                 no_model_load):
    """peft refused it when training was over: a ValueError's traceback and no adapter."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    message = fails_with(["fit", *DEMO, f"--trainer.default_root_dir={tmp_path}",
                          "--trainer.callbacks+=lightning_review.SaveAdapter",
                          f"--trainer.callbacks.dirpath={tmp_path / 'afile'}"])
    assert message == (f"error: SaveAdapter's dirpath {tmp_path / 'afile'} is a file, not a directory (the adapter "
                       f"is written there when fit ends): give a directory")


def test_a_review_writer_output_file_that_cannot_be_written_is_refused_at_setup(tmp_path):
    from lightning_review.training.callbacks import ReviewWriter

    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match=r"output_file .*afile/reviews.jsonl is under .*afile, which is a file"):
        ReviewWriter(str(tmp_path / "afile" / "reviews.jsonl")).setup(None, None, "predict")
    with pytest.raises(UserError, match=r"output_file .* is a directory: give a file path"):
        ReviewWriter(str(tmp_path)).setup(None, None, "predict")
    ReviewWriter(str(tmp_path / "new" / "reviews.jsonl")).setup(None, None, "predict")  # created when written
