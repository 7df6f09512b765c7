"""A flag typed before the command and a config file typed after it (``--model.lora_r 4 fit -c demo.yaml``): the
suggested command line puts the flag after the config file, where its value still wins (jsonargparse reads the
words in order, a later one replacing an earlier one). Put before the file, the file's lora_r replaced the 4."""

import shlex

import pytest
import yaml

from lightning_review.cli import command_error, main
from tests.conftest import ROOT


def _suggested(argv: list[str]) -> list[str]:
    line = command_error(argv)
    assert line is not None and " after: python -m lightning_review " in line, line
    return shlex.split(line.split(" after: python -m lightning_review ", 1)[1])


def _printed_config(argv: list[str], capsys) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_the_suggested_line_keeps_the_flags_value_over_the_config_files(capsys):
    demo = str(ROOT / "configs" / "demo.yaml")
    suggested = _suggested(["--model.lora_r", "4", "fit", "-c", demo])
    assert suggested == ["fit", "-c", demo, "--model.lora_r", "4"]
    assert _printed_config(suggested, capsys)["model"]["lora_r"] == 4
    assert _printed_config(["fit", "-c", demo], capsys)["model"]["lora_r"] != 4  # the file's own value differs


def test_flags_typed_after_the_last_config_file_still_come_last():
    assert _suggested(["--model.lora_r", "4", "fit", "-c", "a.yaml", "--trainer.max_steps", "3", "-c", "b.yaml",
                       "--model.lora_r", "8"]) == [
        "fit", "-c", "a.yaml", "--trainer.max_steps", "3", "-c", "b.yaml", "--model.lora_r", "4",
        "--model.lora_r", "8"]


def test_a_moved_config_file_goes_first_and_a_moved_flag_after_it():
    config = str(ROOT / "configs" / "7b.yaml")  # from the repository root: pytest may be run from anywhere
    assert _suggested(["--model.lora_r", "4", "-c", config, "fit", "--trainer.max_steps=3"])[:5] == [
        "fit", "-c", config, "--model.lora_r", "4"]
