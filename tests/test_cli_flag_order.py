"""A flag before the command (``--model.lora_r 4 fit``, ``-c configs/7b.yaml fit``) is one line naming the flag and
the command line with it after the command, exit status 2; jsonargparse said ``invalid choice: '4'`` (the flag's
value read as the command), or complained about the config file's keys. ``--help`` before a command still helps, and
LightningCLI's own top-level flags stay valid there: ``-c`` with a config keyed by command, ``--print_config``."""

import shlex

import pytest

from lightning_review.cli import main
from tests.conftest import ROOT, run_cli

# from the repository root, not the working directory: pytest may be run from anywhere
CONFIG_7B = str(ROOT / "configs" / "7b.yaml")


@pytest.mark.parametrize("argv, line", [
    (["--model.lora_r", "4", "fit"],
     "error: --model.lora_r comes before the command; put it after: python -m lightning_review fit --model.lora_r 4"),
    (["-c", CONFIG_7B, "fit", "--trainer.max_steps=3"],
     "error: -c comes before the command; put it after: "
     f"python -m lightning_review fit -c {shlex.quote(CONFIG_7B)} --trainer.max_steps=3"),
    (["--model.lora_r=4", "--trainer.max_epochs", "-1", "validate"],
     "error: --model.lora_r and --trainer.max_epochs come before the command; put them after: "
     "python -m lightning_review validate --model.lora_r=4 --trainer.max_epochs -1"),
    (["--output", "my reviews.jsonl", "generate"],
     "error: --output comes before the command; put it after: "
     "python -m lightning_review generate --output 'my reviews.jsonl'"),
])
def test_a_flag_before_the_command_is_one_line_with_the_fix(capsys, argv, line):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == line + "\n"


def test_the_command_line_says_so_and_help_before_a_command_still_helps(tmp_path):
    config = str(ROOT / "configs" / "7b.yaml")
    proc = run_cli("-c", config, "fit", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr == (f"error: -c comes before the command; put it after: "
                           f"python -m lightning_review fit -c {shlex.quote(config)}\n"), proc.stderr
    for flag in ("--help", "-h"):
        proc = run_cli(flag, "fit", cwd=tmp_path)
        assert proc.returncode == 0 and "error" not in proc.stderr, proc.stderr[-2000:]
        assert "Tool subcommands" in proc.stdout and "{fit,validate,test,predict}" in proc.stdout, proc.stdout


def test_a_config_keyed_by_command_stays_before_it_and_other_flags_move(tmp_path, capsys):
    """``-c all.yaml fit`` is LightningCLI's: a config whose keys are the commands. Only the other flags move."""
    keyed = tmp_path / "all.yaml"
    keyed.write_text("fit:\n  model:\n    lora_r: 4\n")
    from lightning_review.cli import command_error

    assert command_error(["-c", str(keyed), "fit"]) is None
    assert command_error([f"--config={keyed}", "--print_config", "fit"]) is None
    assert command_error(["-c", str(tmp_path / "missing.yaml"), "fit"]) is None  # LightningCLI names the file
    assert command_error(["-c", str(keyed), "--model.lora_r", "8", "fit"]) == (
        f"error: --model.lora_r comes before the command; put it after: "
        f"python -m lightning_review -c {shlex.quote(str(keyed))} fit --model.lora_r 8")
    # a tool command has no top-level -c: it moves
    assert command_error(["-c", str(keyed), "generate"]).startswith("error: -c comes before the command")
