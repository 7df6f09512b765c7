"""A tool command's (prepare, evaluate, generate, openai ...) unknown flag, value of the wrong type, missing required
flag or missing config file is one line: the flag, what is wrong and the closest valid flag (or what the required
flag is), exit status 2, no usage dump, no traceback (config_errors.ToolArgumentParser). --help is unchanged;
JSONARGPARSE_DEBUG still raises jsonargparse's exception. (fit's missing config file: tests/test_config_errors.py.)

The cases are ordered by tool: tests/cli_runner.py keeps three tools' zygotes warm."""

import pytest

from tests.conftest import run_cli


def one_line(proc) -> str:
    """The command's only line on stderr, after checking it is a parser's error: status 2, no usage, no traceback."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def test_debug_mode_still_raises_and_help_is_unchanged(tmp_path):
    """JSONARGPARSE_DEBUG: jsonargparse's exception, not the line (here for an abbreviation, now refused)."""
    proc = run_cli("prepare", "--data_file", "d.jsonl", "--tokenizer_dir", "tok", "--max_seq", "64", cwd=tmp_path,
                   env={"JSONARGPARSE_DEBUG": "true"})
    assert proc.returncode == 1 and "ArgumentError: unrecognized arguments: --max_seq 64" in proc.stderr
    proc = run_cli("prepare", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m lightning_review prepare")
    assert "--data_file DATA_FILE" in proc.stdout and not proc.stderr.strip()


def test_a_missing_config_file_or_a_misspelled_key_in_one_is_one_line(tmp_path):
    assert one_line(run_cli("prepare", "--config", "missing.yaml", cwd=tmp_path)) == (
        f"error: --config missing.yaml: the config file {tmp_path.resolve() / 'missing.yaml'} does not exist")
    (tmp_path / "my.yaml").write_text("data_file: d.jsonl\ntokenizer_dir: tok\ndata_fiel: e.jsonl\n")
    assert one_line(run_cli("prepare", "--config", "my.yaml", cwd=tmp_path)) == (
        "error: my.yaml:3: unknown key data_fiel; did you mean data_file?")


@pytest.mark.parametrize("args, expected", [
    # unknown flags: the closest valid one
    (["prepare", "--data_fiel", "x.jsonl", "--tokenizer_dir", "tok"],
     "error: --data_fiel: unknown option of prepare; did you mean --data_file?"),
    (["prepare", "-c", "my.yaml"], "error: -c: unknown option of prepare; did you mean --config?"),
    # a value of the wrong type, or none
    (["prepare", "--data_file", "d", "--tokenizer_dir", "t", "--task", "reviews"],
     "error: --task expects one of 'review', 'text', got 'reviews'"),
    (["prepare", "--data_file"], "error: --data_file: expects a value, none given"),
    # required flags not given: which, and what each is (its help's first sentence)
    (["prepare"], "error: --data_file and --tokenizer_dir are required by prepare. --data_file: the data (any format "
                  "lightning_review.data.readers reads); for task=text, documents. --tokenizer_dir: the model's "
                  "tokenizer (its checkpoint directory)."),
    # an abbreviation is an unknown flag, no longer silently expanded to the flag it begins
    (["generate", "--papers", "p.jsonl", "--max_new_token", "5"],
     "error: --max_new_token: unknown option of generate; did you mean --max_new_tokens?"),
    (["generate", "--papers", "p.jsonl", "--max_new_tokens", "five"],
     "error: --max_new_tokens expects int, got 'five'"),
    (["generate"], "error: --papers is required by generate: JSONL with paper and id a line."),
    (["openai", "create", "--training_fil", "file-1"],
     "error: --training_fil: unknown option of openai create; did you mean --training_file?"),
    (["openai", "creat"], "error: creat: unknown subcommand of openai; did you mean create?"),
    (["openai", "create"], "error: --training_file is required by openai create: the file id printed by `openai "
                           "upload`."),
    (["evaluate", "--judge", "embedding"], "error: --judge: unknown option of evaluate; did you mean --judges?"),
])
def test_a_bad_tool_flag_is_one_line(tmp_path, args, expected):
    assert one_line(run_cli(*args, cwd=tmp_path)) == expected
