"""``openai upload/create/follow/cancel/list`` without OPENAI_API_KEY: the project's one line naming the variable,
how to set it and OPENAI_BASE_URL for a compatible server, before anything else (upload asked for its confirmation
first, and the others showed the openai client's "Missing credentials" message); never a request, never the key.
The commands that call no API (export, validate, cost) still run without a key."""

import pytest

from tests.conftest import run_cli, write_jsonl
from tests.openai_server import FakeOpenAI

MISSING = ("error: OPENAI_API_KEY is not set: the API's key is read from the environment only (never from a flag); "
           "export OPENAI_API_KEY=<your key> (any non-empty value for a local server that checks none) and run "
           "again; for an OpenAI-compatible server instead of OpenAI's, also export OPENAI_BASE_URL=<its address, "
           "e.g. http://localhost:8000/v1>")


@pytest.fixture
def server(monkeypatch):
    """A server the commands could reach, had they a key: none of them may call it."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAI() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        yield fake


def last_line(proc) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("args", [["list"], ["follow", "--job_id=ftjob-1"], ["cancel", "--job_id=ftjob-1"],
                                  ["create", "--training_file=file-1"], ["create", "--training_file=file-1",
                                                                         "--follow=true"]])
def test_a_job_command_without_a_key_says_how_to_set_it(server, tmp_path, args):
    proc = run_cli("openai", *args, cwd=tmp_path)
    assert last_line(proc) == MISSING and server.requests == []


@pytest.mark.parametrize("yes", [[], ["--yes=true"]])
def test_upload_without_a_key_says_so_before_it_asks_for_confirmation(server, chat_file, tmp_path, yes):
    """Without --yes, stdin is no terminal: the old code refused for want of a confirmation, and a user at a
    terminal typed 'upload' only to be told of the key."""
    proc = run_cli("openai", "upload", f"--file={chat_file}", *yes, cwd=tmp_path)
    assert last_line(proc) == MISSING and "confirm" not in proc.stdout + proc.stderr
    assert server.requests == []


def test_a_blank_key_is_a_missing_key(server, chat_file, tmp_path):
    proc = run_cli("openai", "upload", f"--file={chat_file}", "--yes=true", cwd=tmp_path,
                   env={"OPENAI_API_KEY": "  "})
    assert last_line(proc) == MISSING and server.requests == []


def test_a_base_url_without_its_scheme_is_named_before_any_call(tmp_path, monkeypatch):
    """It was retried with backoff by the client, then failed naming nothing; the credentials are never shown."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghijklmnop")
    monkeypatch.setenv("OPENAI_BASE_URL", "user:sk-secret-pass@localhost:8000/v1")
    proc = run_cli("openai", "list", cwd=tmp_path)
    assert last_line(proc) == ("error: OPENAI_BASE_URL must start with http:// or https:// (got localhost:8000/v1)")
    assert "secret" not in proc.stdout + proc.stderr and "0123456789" not in proc.stdout + proc.stderr


def test_export_validate_and_cost_run_without_a_key_and_then_upload_names_it(server, tmp_path):
    """The steps that call no API need no key; the first that does says how to set one."""
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"id": f"p{i}", "paper": f"Paper {i} on graphs.",
                                                    "review": f"Review {i}: clear, with weak baselines."}
                                                   for i in range(2)])
    chat = tmp_path / "chat.jsonl"
    runs = [("openai", "export", f"--data_file={pairs}", f"--output_file={chat}", "--truncate=false"),
            ("openai", "validate", f"--file={chat}"), ("cost", f"--file={chat}", "--epochs=2")]
    for args in runs:
        proc = run_cli(*args, cwd=tmp_path)
        assert proc.returncode == 0 and "OPENAI_API_KEY" not in proc.stderr, (args, proc.stderr[-3000:])
    assert last_line(run_cli("openai", "upload", f"--file={chat}", cwd=tmp_path)) == MISSING
    assert server.requests == []
