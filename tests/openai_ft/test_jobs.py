"""Upload and fine-tuning jobs through the openai client, against a local server speaking the OpenAI protocol:
retries on 429 and 500, a failed job, progress events, cancel and list; the key never shows."""

from collections import deque

import pytest

from lightning_review.errors import UserError
from lightning_review.openai_ft import commands, jobs
from tests.conftest import run_cli, write_jsonl
from tests.openai_server import API_KEY, FakeOpenAI


@pytest.fixture
def server():
    with FakeOpenAI(steps=3) as fake:
        yield fake


@pytest.fixture
def env(server, monkeypatch):
    values = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": API_KEY}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_upload_retries_429_and_500_and_never_shows_the_key(server, env, chat_file, tmp_path):
    # The 500 comes first: the client's own backoff (no setting for its delay; 0.375-0.5 s before the first retry,
    # twice that before the second) is met at its shortest, and the 429 then waits the server's retry-after-ms (10).
    server.faults["POST /v1/files"] = deque([500, 429])
    proc = run_cli("openai", "upload", f"--file={chat_file}", "--yes=true", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert server.requests.count(("POST", "/v1/files")) == 3  # two refused, the third taken
    file_id = proc.stdout.strip().split()[-1]
    assert server.files[file_id]["lines"] == 3 and server.files[file_id]["filename"] == "chat.jsonl"
    assert API_KEY not in proc.stdout + proc.stderr and server.auth_headers == {f"Bearer {API_KEY}"}


def test_upload_needs_confirmation(server, env, chat_file, tmp_path):
    proc = run_cli("openai", "upload", f"--file={chat_file}", cwd=tmp_path, env=env)  # stdin is no terminal
    assert proc.returncode != 0 and "refusing to upload without confirmation" in proc.stderr
    assert server.requests == []


@pytest.fixture
def leaky_file(tmp_path):
    """An e-mail address on line 1, an API key on line 2 (assembled here, so no key-shaped literal is in the repo)."""
    return write_jsonl(tmp_path / "leaky.jsonl", [
        {"messages": [{"role": "user", "content": "Contact jane.doe@example.org for the data."},
                      {"role": "assistant", "content": "ok"}]},
        {"messages": [{"role": "user", "content": "key " + LEAKED_KEY}, {"role": "assistant", "content": "ok"}]},
    ])


LEAKED_KEY = "sk-" + "abcdefghijklmnopqrstuvwxyz123456"


def test_a_found_secret_stops_the_upload_even_with_yes(server, env, leaky_file, tmp_path):
    proc = run_cli("openai", "upload", f"--file={leaky_file}", "--yes=true", cwd=tmp_path, env=env)
    assert proc.returncode == 1 and server.requests == [] and server.files == {}  # nothing reached the server
    assert proc.stderr.strip() == (
        f"error: {leaky_file}: refusing to upload: what looks like a secret or personal data on line 1: e-mail "
        "address (email); line 2: OpenAI-style API key (openai_key). Remove it and export again, or, if it is meant "
        """to be uploaded, accept it by kind: --allow_secret_kinds '["openai_key", "email"]'""")
    assert "jane.doe" not in proc.stderr and LEAKED_KEY[:8] not in proc.stderr


def test_allow_secret_kinds_uploads_what_it_names_and_warns_without_echoing(server, env, leaky_file, tmp_path):
    proc = run_cli("openai", "upload", f"--file={leaky_file}", "--yes=true",
                   """--allow_secret_kinds=["email", "openai_key"]""", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    file_id = proc.stdout.strip().split()[-1]
    assert server.files[file_id]["lines"] == 2
    assert "e-mail address (email)" in proc.stderr and "OpenAI-style API key (openai_key)" in proc.stderr
    assert "lines 1, 2" in proc.stderr and "jane.doe" not in proc.stderr and LEAKED_KEY[:8] not in proc.stderr
    # the project's warning form (it was "WARNING: ...", unlike generate's and evaluate's)
    assert "warning: uploading what --allow_secret_kinds accepts: " in proc.stderr and "WARNING" not in proc.stderr


def test_allowing_one_kind_does_not_allow_another(server, env, leaky_file):
    for allowed in (["email"], "email"):  # a list, or one string as `--allow_secret_kinds email` gives it
        with pytest.raises(UserError, match=r"line 2: OpenAI-style API key \(openai_key\)\. .*"
                                            r"""--allow_secret_kinds '\["openai_key", "email"\]'$""") as caught:
            commands.upload(str(leaky_file), yes=True, allow_secret_kinds=allowed)
        assert "line 1" not in str(caught.value)  # the accepted e-mail address is no longer listed
    with pytest.raises(UserError, match="unknown kind.*'emails'.*the kinds are: openai_key, .*huggingface_token"):
        commands.upload(str(leaky_file), yes=True, allow_secret_kinds=["emails"])
    assert server.requests == []
    assert commands.upload(str(leaky_file), yes=True, allow_secret_kinds="email, openai_key") in server.files


def test_an_empty_file_is_not_uploaded(server, env, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(UserError, match=f"{empty}: refusing to upload: the file has no examples"):
        commands.upload(str(empty), yes=True)
    assert server.requests == []


def test_create_refuses_zero_or_negative_epochs(server, env):
    for epochs in (0, -2):
        with pytest.raises(UserError, match=f"--epochs must be a whole number of epochs, 1 or more \\(got {epochs}\\)"):
            commands.create("file-1", epochs=epochs)
    assert server.requests == []


def test_invalid_file_is_not_uploaded(server, env, tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"messages": [{"role": "user", "content": "p"}]}])
    proc = run_cli("openai", "upload", f"--file={bad}", "--yes=true", cwd=tmp_path, env=env)
    assert proc.returncode != 0 and "refusing to upload" in proc.stderr and server.requests == []


def test_create_and_follow_to_the_fine_tuned_model(server, env, chat_file, tmp_path):
    file_id = jobs.upload(chat_file)
    server.faults["GET /v1/fine_tuning/jobs/*"] = deque([500])  # one hiccup while following: retried
    proc = run_cli("openai", "create", f"--training_file={file_id}", "--model=gpt-3.5-turbo-0125", "--epochs=2",
                   "--suffix=review", "--follow=true", "--poll_seconds=0.01", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not server.faults["GET /v1/fine_tuning/jobs/*"]  # the injected 500 was met, and retried
    job = next(iter(server.jobs.values()))
    assert job["hyperparameters"] == {"n_epochs": 2} and job["suffix"] == "review"
    assert "fine-tuned model: ft:gpt-3.5-turbo-0125:org-test:review:abc123" in proc.stdout
    messages = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert [m.split("] ", 1)[1] for m in messages] == [e["message"] for e in server.events[job["id"]]]  # once each


def test_a_failed_job_exits_with_the_services_reason(server, env, chat_file, tmp_path):
    file_id = jobs.upload(chat_file)
    job = jobs.create(file_id, "gpt-3.5-turbo", 2, suffix="fail")
    proc = run_cli("openai", "follow", f"--job_id={job.id}", "--poll_seconds=0.01", cwd=tmp_path, env=env)
    assert proc.returncode != 0
    assert f"fine-tuning job {job.id} failed: The file has 2 examples with too many tokens" in proc.stderr


def test_cancel_and_list(server, env, chat_file, tmp_path):
    job = jobs.create(jobs.upload(chat_file), "gpt-3.5-turbo", 1)
    proc = run_cli("openai", "cancel", f"--job_id={job.id}", cwd=tmp_path, env=env)
    assert proc.returncode == 0 and f"{job.id}: cancelled" in proc.stdout
    proc = run_cli("openai", "list", cwd=tmp_path, env=env)
    assert proc.returncode == 0 and job.id in proc.stdout and "cancelled" in proc.stdout


def test_unknown_file_id_is_a_clear_error(server, env, tmp_path):
    proc = run_cli("openai", "create", "--training_file=file-nope", cwd=tmp_path, env=env)
    assert proc.returncode != 0 and "invalid training_file: file-nope" in proc.stderr
    assert "Traceback" not in proc.stderr
