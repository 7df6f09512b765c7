"""More of a user's mistakes in fit's config files and flags, each one line naming the file and line (or the flag),
exit status 2 (lightning_review/config_errors.py): a typo with --print_config, an abbreviated flag, a duplicate key,
a file that is not a mapping of keys, a section that is not a mapping, a linked key given itself."""

import pytest

from tests.conftest import ROOT, run_cli
from tests.test_config_errors import DEMO, config_with, user_error

DEMO_PATH = str(ROOT / "configs" / "demo.yaml")
A_CONFIG = ("a config file must be a YAML mapping of keys to values (key: value, a section's keys indented under "
            "it)")


@pytest.mark.parametrize("old, new, bad, good", [
    ("  lora_r: 8", "  lora_rank: 8", "model.lora_rank", "model.lora_r"),
    ("  max_steps: 40", "  max_step: 40", "trainer.max_step", "trainer.max_steps"),
])
def test_a_misspelled_key_is_reported_the_same_with_print_config(tmp_path, old, new, bad, good):
    name, line = config_with(tmp_path, old, new)
    message = user_error(run_cli("fit", "-c", name, "--print_config", cwd=tmp_path))
    assert message == f"error: my.yaml:{line}: unknown key {bad}; did you mean {good}?"


@pytest.mark.parametrize("flags, expected", [
    (["--trainer.max_st", "3"], "error: --trainer.max_st: unknown option of fit; did you mean --trainer.max_steps?"),
    (["--trainer.max_st", "3", "--print_config"],
     "error: --trainer.max_st: unknown option of fit; did you mean --trainer.max_steps?"),
    (["--model.lora", "4"], "error: --model.lora: unknown option of fit; did you mean --model.lora_r?"),
])
def test_an_abbreviated_flag_is_refused(tmp_path, flags, expected):
    assert user_error(run_cli("fit", "-c", DEMO_PATH, *flags, cwd=tmp_path)) == expected


def test_a_duplicate_key_is_refused_with_both_lines(tmp_path):
    lines = DEMO.splitlines()
    first = lines.index("  lora_r: 8") + 1
    lines.insert(first, "  lora_r: 16")
    (tmp_path / "my.yaml").write_text("\n".join(lines) + "\n")
    assert user_error(run_cli("fit", "-c", "my.yaml", cwd=tmp_path)) == (
        f"error: my.yaml:{first + 1}: duplicate key model.lora_r (first at line {first})")
    # a second model: section, which would replace the first one whole
    (tmp_path / "my.yaml").write_text(DEMO + "\nmodel:\n  lora_r: 4\n")
    second = len(DEMO.splitlines()) + 2
    assert user_error(run_cli("fit", "-c", "my.yaml", cwd=tmp_path)) == (
        f"error: my.yaml:{second}: duplicate key model (first at line {DEMO.splitlines().index('model:') + 1})")
    # in a file given before the subcommand, and in a tool's --config
    (tmp_path / "top.yaml").write_text("fit:\n  trainer:\n    max_steps: 3\n    max_steps: 4\n")
    assert user_error(run_cli("-c", "top.yaml", "fit", cwd=tmp_path)) == (
        "error: top.yaml:4: duplicate key fit.trainer.max_steps (first at line 3)")
    (tmp_path / "tool.yaml").write_text("data_file: d.jsonl\ntokenizer_dir: tok\ndata_file: e.jsonl\n")
    assert user_error(run_cli("prepare", "--config", "tool.yaml", cwd=tmp_path)) == (
        "error: tool.yaml:3: duplicate key data_file (first at line 1)")


@pytest.mark.parametrize("text, expected", [
    ("", f"my.yaml: the config file is empty; {A_CONFIG}"),
    ("# only a comment\n", f"my.yaml: the config file is empty; {A_CONFIG}"),
    ("hello world\n", f"my.yaml:1: the config file is a value (hello world), not a mapping of keys; {A_CONFIG}"),
    ("- a\n- b\n", f"my.yaml:1: the config file is a list, not a mapping of keys; {A_CONFIG}"),
    ("model:\n\tlora_r: 8\n",
     f"my.yaml:2: not valid YAML (found character '\\t' that cannot start any token); {A_CONFIG}"),
    ("model: [unclosed\n", "my.yaml:2: not valid YAML (expected ',' or ']', but got '<stream end>'); " + A_CONFIG),
    ("model:\n  lora_r: 8\ndata:\n", "my.yaml:3: section data is empty, not a mapping of its keys; give its keys "
                                     "indented under it (key: value), or delete the line"),
    ("data:\n  - 1\n", "my.yaml:1: section data is a list, not a mapping of its keys; give its keys indented under "
                       "it (key: value), or delete the line"),
])
def test_a_file_that_is_not_a_mapping_of_keys_is_named_with_what_a_config_file_is(tmp_path, text, expected):
    (tmp_path / "my.yaml").write_text(text)
    assert user_error(run_cli("fit", "-c", "my.yaml", cwd=tmp_path)) == f"error: {expected}"


def test_the_linked_max_seq_length_is_refused_in_a_file_and_as_a_flag(tmp_path):
    lines = DEMO.splitlines()
    line = lines.index("  lora_r: 8") + 1
    lines.insert(line, "  max_seq_length: 256")
    (tmp_path / "my.yaml").write_text("\n".join(lines) + "\n")
    fix = "model.max_seq_length follows data.max_seq_length; set data.max_seq_length instead"
    assert user_error(run_cli("fit", "-c", "my.yaml", cwd=tmp_path)) == f"error: my.yaml:{line + 1}: {fix}"
    assert user_error(run_cli("fit", "-c", DEMO_PATH, "--model.max_seq_length", "256", cwd=tmp_path)) == (
        f"error: --model.max_seq_length: {fix}")


def test_a_misspelled_class_path_names_its_line_and_the_closest_class(tmp_path):
    name, line = config_with(tmp_path, "    - class_path: lightning_review.SaveAdapter",
                             "    - class_path: lightning_review.SaveAdaptor")
    assert user_error(run_cli("fit", "-c", name, cwd=tmp_path)) == (
        f"error: my.yaml:{line}: unknown class lightning_review.SaveAdaptor (in trainer.callbacks); did you mean "
        "lightning_review.SaveAdapter?")
    assert user_error(run_cli("fit", "-c", DEMO_PATH, "--trainer.callbacks+=lightning.pytorch.callback.ModelCheckpoint",
                              cwd=tmp_path)) == (
        "error: --trainer.callbacks: unknown class lightning.pytorch.callback.ModelCheckpoint (in trainer.callbacks); "
        "did you mean lightning.pytorch.callbacks.ModelCheckpoint?")


def test_a_bad_value_from_an_environment_variable_names_the_variable_not_the_files_line(tmp_path):
    """With JSONARGPARSE_DEFAULT_ENV=true, PL_FIT__TRAINER__MAX_STEPS=abc was reported at demo.yaml's line of
    max_steps (``configs/demo.yaml:8: trainer.max_steps expects int``), a line holding 40: the variables are read
    before the files, so the file's line was the wrong place."""
    env = {"JSONARGPARSE_DEFAULT_ENV": "true", "PL_FIT__TRAINER__MAX_STEPS": "abc"}
    message = user_error(run_cli("fit", "-c", DEMO_PATH, "--print_config", cwd=tmp_path, env=env))
    assert message == ("error: the environment variable PL_FIT__TRAINER__MAX_STEPS: trainer.max_steps expects int, "
                       "got 'abc'")
