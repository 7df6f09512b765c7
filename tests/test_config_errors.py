"""A misspelled key or a mistyped value in a fit config file or on the command line: one line naming the file and
line (or the flag), the key and the fix, exit status 2, no traceback; it fails while parsing, before any model loads
(lightning_review/config_errors.py)."""

import pytest

from tests.conftest import ROOT, run_cli

DEMO = (ROOT / "configs" / "demo.yaml").read_text()


def config_with(tmp_path, old: str, new: str) -> tuple[str, int]:
    """demo.yaml with the line ``old`` replaced by ``new``, as my.yaml in tmp_path; and the line number of ``new``."""
    lines = DEMO.splitlines()
    number = lines.index(old) + 1
    lines[number - 1] = new
    (tmp_path / "my.yaml").write_text("\n".join(lines) + "\n")
    return "my.yaml", number


def user_error(proc) -> str:
    """The command's one line of error, after checking it is a user's error: status 2, no traceback, no usage."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("old, new, bad, good", [
    ("  lora_r: 8", "  lora_rank: 8", "model.lora_rank", "model.lora_r"),
    ("  max_steps: 40", "  max_step: 40", "trainer.max_step", "trainer.max_steps"),
    ("  max_seq_length: 512", "  max_seq_len: 512", "data.max_seq_len", "data.max_seq_length"),
    ("model:", "modle:", "modle", "model"),  # a misspelled section is named at its own line, not at its first key
])
def test_a_misspelled_key_in_a_config_file_names_the_file_line_and_the_right_key(tmp_path, old, new, bad, good):
    name, line = config_with(tmp_path, old, new)
    message = user_error(run_cli("fit", "-c", name, cwd=tmp_path))
    assert message == f"error: my.yaml:{line}: unknown key {bad}; did you mean {good}?"


def test_a_misspelled_init_argument_of_a_callback_names_its_line_and_the_class_parameter(tmp_path):
    name, line = config_with(tmp_path, "        every_n_train_steps: 10", "        every_n_train_step: 10")
    message = user_error(run_cli("fit", "-c", name, cwd=tmp_path))
    assert message == (f"error: my.yaml:{line}: unknown key every_n_train_step of "
                       "lightning.pytorch.callbacks.ModelCheckpoint (in trainer.callbacks); did you mean "
                       "every_n_train_steps?")


def test_a_value_of_the_wrong_type_names_the_file_line_key_and_type(tmp_path):
    """The file's value is named even where a later flag gives the key a valid one: jsonargparse checks the file's
    values when it reads the file."""
    name, line = config_with(tmp_path, "  lora_r: 8", "  lora_r: eight")
    message = user_error(run_cli("fit", "-c", name, "--model.lora_r=4", cwd=tmp_path))
    assert message == f"error: my.yaml:{line}: model.lora_r expects int, got 'eight'"
    name, line = config_with(tmp_path, "  lr_scheduler: constant_with_warmup", "  lr_scheduler: cosin")
    message = user_error(run_cli("fit", "-c", name, cwd=tmp_path))
    assert message == (f"error: my.yaml:{line}: model.lr_scheduler expects one of 'constant_with_warmup', 'cosine', "
                       "got 'cosin'")


@pytest.mark.parametrize("flags, expected", [
    (["--model.lora_rank", "8"], "error: --model.lora_rank: unknown option of fit; did you mean --model.lora_r?"),
    (["--trainer.lora_r=8"], "error: --trainer.lora_r: unknown option of fit; did you mean --model.lora_r?"),
    (["--trainer.max_epochs=two"], "error: --trainer.max_epochs expects int or null, got 'two'"),
])
def test_a_bad_flag_names_the_flag_and_the_right_one(tmp_path, flags, expected):
    proc = run_cli("fit", "-c", str(ROOT / "configs" / "demo.yaml"), *flags, cwd=tmp_path)
    assert user_error(proc) == expected


def test_a_missing_config_file_names_the_flag_and_the_path(tmp_path):
    expected = f"error: -c missing.yaml: the config file {tmp_path.resolve() / 'missing.yaml'} does not exist"
    assert user_error(run_cli("fit", "-c", "missing.yaml", cwd=tmp_path)) == expected
    assert user_error(run_cli("-c", "missing.yaml", "fit", cwd=tmp_path)) == expected


def test_other_parser_errors_keep_jsonargparses_report(tmp_path):
    """(A misspelled first word is cli.main's: tests/test_unknown_command.py.)"""
    proc = run_cli("--seed_everything", "1", "fitt", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "usage:" in proc.stderr and "invalid choice: '1'" in proc.stderr


# --- the parts, without a command ---------------------------------------------------------------------------------

KEYS = ["model", "model.lora_r", "model.lora_alpha", "model.learning_rate", "trainer", "trainer.max_steps",
        "trainer.max_epochs", "data", "data.max_seq_length", "ckpt_path"]


def test_suggestion():
    from lightning_review.config_errors import suggestion

    assert suggestion("model.lora_rank", KEYS) == "did you mean model.lora_r?"
    assert suggestion("modle.lora_r", KEYS, flag=True) == "did you mean --model.lora_r?"
    assert suggestion("model.max_steps", KEYS) == "did you mean trainer.max_steps?"  # the right name, other section
    assert suggestion("model.zzz", KEYS) == (
        "no close match among the keys of model: learning_rate, lora_alpha, lora_r")
    assert suggestion("zzz", KEYS) == "the top-level keys are ckpt_path, data, model, trainer"


def test_first_sentence_does_not_end_at_an_abbreviation():
    from lightning_review.config_errors import first_sentence

    assert first_sentence("The judge, e.g. ``gpt-4o``, that scores. Any other model works.") == (
        "The judge, e.g. gpt-4o, that scores.")
    assert first_sentence("The split (i.e. train or val) to\n    read. Then more.") == (
        "The split (i.e. train or val) to read.")
    assert first_sentence("Files, folders etc. to read. Then more.") == "Files, folders etc. to read."
    assert first_sentence("One line. Two.") == "One line."
    assert first_sentence("No full stop") == "No full stop."


def test_yaml_line_reads_nested_dotted_and_repeated_keys(tmp_path):
    from lightning_review.config_errors import yaml_line

    path = tmp_path / "c.yaml"
    path.write_text("# a comment\nmodel:\n  lora_r: 8\n\n  lora_r: 16\nmodel.lora_alpha: 4\ntrainer: {max_steps: 3}\n")
    assert yaml_line(str(path), ["model", "lora_r"]) == 5  # the one loaded
    assert yaml_line(str(path), ["model", "lora_alpha"]) == 6
    assert yaml_line(str(path), ["trainer", "max_steps"]) == 7
    assert yaml_line(str(path), ["data"]) is None
    path.write_text("model: [unclosed\n")
    assert yaml_line(str(path), ["model"]) is None
