"""tests/cli_runner.py, behind run_cli: a command forked from a zygote gives what a fresh ``python -m
lightning_review`` process gives (status, stdout, stderr), in its own working directory and environment. Light
commands only (``cost``, ``openai``), so the comparison with fresh processes costs seconds."""

import os

import pytest

from tests import cli_runner
from tests.conftest import run_cli, write_jsonl
from tests.openai_server import API_KEY, FakeOpenAI

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="zygotes fork; without fork run_cli runs subprocesses")

CASES = [("cost", "--tokens=118689950", "--epochs=2"),  # an answer on stdout, status 0
         ("cost", "--tokens=-5", "--epochs=0"),  # a user's mistake: one line on stderr, status 1
         ("cost", "--no_such_flag=1")]  # the argument parser's usage message, status 2


def test_a_forked_command_gives_what_a_fresh_process_gives(tmp_path):
    forked = [run_cli(*args, cwd=tmp_path) for args in CASES]
    fresh = [run_cli(*args, cwd=tmp_path, fresh=True) for args in CASES]
    assert [p.returncode for p in forked] == [0, 1, 2]
    for args, a, b in zip(CASES, forked, fresh):
        assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), args
    if os.environ.get("LIGHTNING_REVIEW_TEST_SUBPROCESS") != "1":  # the zygote ran them, none fell back
        assert any(kind == ".openai_ft.commands" for kind, _ in cli_runner._zygotes)


def test_each_command_has_its_own_working_directory_and_environment(tmp_path, monkeypatch):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    elsewhere.mkdir()
    here.mkdir()
    write_jsonl(here / "chat.jsonl", [{"messages": [{"role": "user", "content": "Paper."},
                                                    {"role": "assistant", "content": "Review."}]}])
    assert run_cli("openai", "validate", "--file=chat.jsonl", cwd=here).returncode == 0
    assert run_cli("openai", "validate", "--file=chat.jsonl", cwd=elsewhere).returncode == 1
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAI() as server:
        keyless = run_cli("openai", "list", cwd=here, env={"OPENAI_BASE_URL": server.base_url})
        assert keyless.returncode == 1 and "OPENAI_API_KEY" in keyless.stderr
        listed = run_cli("openai", "list", cwd=here, env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": API_KEY})
        assert listed.returncode == 0, listed.stderr
