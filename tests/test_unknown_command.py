"""A missing or misspelled command is one line naming every command (the trainer's and the tools'), with the closest
one: LightningCLI's usage text would list only fit/validate/test/predict, pointing ``evaluat`` at ``validate``."""

import pytest

from lightning_review.cli import main


@pytest.mark.parametrize("argv, start", [
    (["fitt", "-c", "configs/demo.yaml"], "error: fitt is not a command; did you mean fit? (the commands are fit, "),
    (["evaluat", "--judges", "embedding"], "error: evaluat is not a command; did you mean evaluate? ("),
    (["bananas"], "error: bananas is not a command; the commands are fit, validate, test, predict, export, "),
    ([], "error: a command is needed, e.g. python -m lightning_review fit -c configs/demo.yaml; the commands are "),
])
def test_a_missing_or_misspelled_command_is_one_line(capsys, argv, start):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(start) and err.count("\n") == 1 and "prepare, evaluate, generate" in err, err
