"""The one-line fix for flags before the command repeats the command line's words: an OpenAI key among them (in a
proxy's address, or a key flag's value) is shown as ``<OPENAI_API_KEY>``, never itself, since the line goes to a
terminal, a CI log or a pasted bug report."""

import pytest

from lightning_review.cli import command_error, main
from tests.openai_server import API_KEY

PLACEHOLDER = "<OPENAI_API_KEY>"


@pytest.fixture
def key_in_env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)


FIX = "python -m lightning_review"


@pytest.mark.parametrize("argv, line", [
    (["--base_url", f"https://proxy.example/{API_KEY}/v1", "evaluate"],
     f"error: --base_url comes before the command; put it after: "
     f"{FIX} evaluate --base_url 'https://proxy.example/{PLACEHOLDER}/v1'"),
    (["--api_key", API_KEY, "generate"],
     f"error: --api_key comes before the command; put it after: {FIX} generate --api_key '{PLACEHOLDER}'"),
    ([f"--base_url=https://proxy.example/{API_KEY}/v1", "evaluate"],
     f"error: --base_url comes before the command; put it after: "
     f"{FIX} evaluate '--base_url=https://proxy.example/{PLACEHOLDER}/v1'"),
])
def test_a_key_in_the_moved_flags_is_shown_as_its_placeholder(key_in_env, argv, line):
    """The placeholder is quoted as one word, so the line pasted into a shell is not read as a redirection."""
    assert command_error(argv) == line


def test_a_key_after_the_command_is_redacted_too(key_in_env):
    error = command_error(["--threshold", "7", "evaluate", "--judge_base_url", f"https://proxy.example/{API_KEY}/v1"])
    assert API_KEY not in error
    assert error.endswith(f"evaluate --threshold 7 --judge_base_url 'https://proxy.example/{PLACEHOLDER}/v1'")


def test_a_key_typed_as_the_command_is_redacted(key_in_env):
    error = command_error([API_KEY, "evaluate"])
    assert API_KEY not in error and error.startswith(f"error: {PLACEHOLDER} is not a command")


def test_main_prints_the_fix_without_the_key(key_in_env, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--api_key", API_KEY, "generate"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert API_KEY not in err and PLACEHOLDER in err


def test_without_a_key_in_the_environment_the_line_is_unchanged(monkeypatch):
    """Only the environment's key is known to be secret: other values are repeated as typed."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    error = command_error(["--api_key", API_KEY, "generate"])
    assert error.endswith(f"python -m lightning_review generate --api_key {API_KEY}")
