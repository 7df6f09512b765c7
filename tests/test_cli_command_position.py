"""The command of a command line with flags before it is the first word that is neither a flag nor a flag's value:
a value that is named as a command (a run directory called ``test``) was read as the command, and the one-line fix
then moved the real command after it (``python -m lightning_review test --trainer.default_root_dir fit``)."""

import pytest

from lightning_review.cli import command_error, main

FIX = "python -m lightning_review"


@pytest.mark.parametrize("argv, line", [
    (["--trainer.default_root_dir", "test", "fit", "--trainer.max_steps=3"],
     f"error: --trainer.default_root_dir comes before the command; put it after: "
     f"{FIX} fit --trainer.default_root_dir test --trainer.max_steps=3"),
    (["--output_dir", "test", "--threshold", "7", "evaluate", "--human_file=human.jsonl"],
     f"error: --output_dir and --threshold come before the command; put them after: "
     f"{FIX} evaluate --output_dir test --threshold 7 --human_file=human.jsonl"),
    (["--foo", "fit", "fit"],
     f"error: --foo comes before the command; put it after: {FIX} fit --foo fit"),
    # --key=value holds its value: the next word is the command
    (["--output_dir=test", "generate", "--limit", "2"],
     f"error: --output_dir comes before the command; put it after: {FIX} generate --output_dir=test --limit 2"),
])
def test_a_flags_value_named_as_a_command_is_not_the_command(capsys, argv, line):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == line + "\n"


def test_no_command_after_the_flags_is_left_to_lightning_cli():
    """Only a flag and its value (which names a command): no command to put it after, so no fix is offered."""
    assert command_error(["--trainer.default_root_dir", "test"]) is None
    assert command_error(["--model.lora_r", "4", "bogus", "fit"]) is None  # the first word that is no flag's value
