"""generate's --timeout_s (seconds one API call may take, handed to the openai client, which keeps its retries and
says on stderr when it retries one), refused in one line when it is not a number above 0; and a failed run leaves no
empty answer cache nor empty directory behind, while a cache that existed before, or holds answers, is kept."""

import json
from collections import deque

import pytest

from lightning_review.answer_cache import AnswerCache
from lightning_review.errors import UserError
from lightning_review.generation.command import generate
from tests.conftest import run_cli
from tests.openai_server import API_KEY, FakeOpenAI

MODEL = "gpt-4-1106-preview"
RETRY_NOTE = "note: an API request timed out or failed (no connection, 429 or 5xx); the openai client retries it"


def generate_cli(papers, out, *flags):
    return run_cli("generate", f"--papers={papers}", f"--output_file={out}", f"--api_model={MODEL}",
                   "--max_new_tokens=16", "--max_context=0", *flags, cwd=papers.parent,
                   env={"OPENAI_API_KEY": API_KEY})


def test_a_call_slower_than_timeout_s_is_retried_and_the_retry_is_said(papers, tmp_path):
    with FakeOpenAI() as server:
        server.chat_behaviours.append(("slow", 1.5))  # the first call: 1.5 s, far inside the default 600 s
        proc = generate_cli(papers, tmp_path / "r.jsonl", f"--base_url={server.base_url}", "--timeout_s=0.3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "written=3" in proc.stdout
    notes = [line.strip() for line in proc.stderr.splitlines() if "note: an API request" in line]
    assert len(notes) == 1 and notes[0].startswith(f"{RETRY_NOTE} (retry 1 of 5, in "), proc.stderr[-2000:]
    assert API_KEY not in proc.stdout + proc.stderr


def test_a_server_that_never_answers_in_time_is_named_with_the_flag_that_gives_it_more(papers, tmp_path, key):
    with FakeOpenAI() as server:
        server.chat_behaviours.extend([("slow", 1.0)] * 3)
        with pytest.raises(UserError) as caught:
            generate(str(papers), str(tmp_path / "r.jsonl"), api_model=MODEL, base_url=server.base_url,
                     max_new_tokens=16, max_context=0, concurrency=1, max_retries=0, timeout_s=0.2)
    assert str(caught.value).startswith(
        f"the API at {server.base_url} did not answer within 0.2 s (1 attempt); check that the server is up and not "
        "overloaded, and that --base_url (or OPENAI_BASE_URL) is its address, or give a slow server more seconds a "
        "call with --timeout_s. No review was written")


@pytest.mark.parametrize("value, got", [("0", "0.0"), ("-1", "-1.0")])
def test_a_timeout_that_is_not_above_0_is_refused_in_one_line_before_anything_is_written(papers, tmp_path, value,
                                                                                         got):
    proc = generate_cli(papers, tmp_path / "runs" / "r.jsonl", "--base_url=http://127.0.0.1:9/v1",
                        f"--timeout_s={value}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --timeout_s must be a number of seconds above 0 (how long one API request may take before the client "
        f"retries it, e.g. 600), got {got}")
    assert not (tmp_path / "runs").exists()


def test_a_timeout_that_is_not_a_number_is_refused_naming_the_flag(papers, tmp_path):
    proc = generate_cli(papers, tmp_path / "runs" / "r.jsonl", "--timeout_s=soon")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == "error: --timeout_s expects float, got 'soon'"
    assert not (tmp_path / "runs").exists()


def test_a_failed_run_leaves_no_empty_cache_nor_the_directories_it_made(papers, tmp_path, key, dead_port):
    base_url = f"http://127.0.0.1:{dead_port}/v1"
    for cache_file in (None, str(tmp_path / "caches" / "answers.sqlite")):
        with pytest.raises(UserError, match="No review was written"):
            generate(str(papers), str(tmp_path / "runs" / "r.jsonl"), api_model=MODEL, base_url=base_url,
                     max_context=0, max_retries=0, cache_file=cache_file)
        assert not (tmp_path / "runs").exists() and not (tmp_path / "caches").exists()


def test_a_failed_run_keeps_a_cache_that_existed_or_holds_answers(papers, tmp_path, key, dead_port):
    existing = tmp_path / "existing.sqlite"
    AnswerCache(existing).close()  # empty, but not this run's: kept
    with pytest.raises(UserError, match="No review was written"):
        generate(str(papers), str(tmp_path / "r.jsonl"), api_model=MODEL, base_url=f"http://127.0.0.1:{dead_port}/v1",
                 max_context=0, max_retries=0, cache_file=str(existing))
    assert existing.exists()
    out = tmp_path / "runs" / "r.jsonl"
    with FakeOpenAI() as server:
        server.faults["POST /v1/chat/completions"] = deque([None, 400])  # the first paper answered, then refused
        with pytest.raises(Exception, match="400"):
            generate(str(papers), str(out), api_model=MODEL, base_url=server.base_url, max_new_tokens=16,
                     max_context=0, concurrency=1, max_retries=0)
    cache = AnswerCache(out.with_suffix(".cache.sqlite"))  # what a rerun resumes from: the answer it paid for
    assert sum(row["calls"] for row in cache.usage().values()) == 1
    cache.close()
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["p0"]
