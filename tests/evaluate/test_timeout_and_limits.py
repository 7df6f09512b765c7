"""evaluate's --timeout_s: the seconds one judge call may take, handed to the openai client (which keeps its own
retries and says on stderr when it retries one); and the settings that would stop a run before its first call
(--max_calls 0, --max_tokens 0, --max_dollars 0) or fail every call (--concurrency 0, --timeout_s 0), refused in one
line naming the flag and what it takes, before anything is written or called."""

import asyncio
import json

import pytest
from openai import APITimeoutError

from lightning_review.answer_cache import AnswerCache
from lightning_review.evaluate.chat_judge import ChatJudge
from lightning_review.openai_client import unreachable_message
from tests.conftest import run_cli
from tests.openai_server import API_KEY, FakeOpenAI

RETRY_NOTE = "note: an API request timed out or failed (no connection, 429 or 5xx); the openai client retries it"


def evaluate_cli(base_url, inputs, tmp_path, *flags):
    human, ours = inputs
    return run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                   f'--judges=["openai:m@{base_url}"]', "--controls=[]", "--resamples=10",
                   f"--output_dir={tmp_path / 'runs' / 'out'}", *flags, cwd=tmp_path,
                   env={"OPENAI_API_KEY": API_KEY})


def test_a_call_slower_than_timeout_s_is_retried_and_the_retry_is_said(inputs, tmp_path):
    with FakeOpenAI() as server:  # its own: the slow answer ends after the test's client gave up on it
        server.chat_behaviours.append(("slow", 1.5))  # the first call: 1.5 s, far inside the client's default 120 s
        proc = evaluate_cli(server.base_url, inputs, tmp_path, "--timeout_s=0.3")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert not server.chat_behaviours
    notes = [line.strip() for line in proc.stderr.splitlines() if "note: an API request" in line]
    assert len(notes) == 1 and notes[0].startswith(f"{RETRY_NOTE} (retry 1 of 5, in "), proc.stderr[-2000:]
    assert notes[0].endswith(" s); --timeout_s sets the seconds a request may take")
    assert (tmp_path / "runs" / "out" / "result.json").exists()
    assert API_KEY not in proc.stdout + proc.stderr


def test_a_judge_that_never_answers_in_time_is_named_with_the_flag_that_gives_it_more(tmp_path):
    with FakeOpenAI() as server:
        judge = ChatJudge("m", AnswerCache(tmp_path / "cache.sqlite"), base_url=server.base_url, api_key=API_KEY,
                          max_retries=0, timeout=0.2)
        server.chat_behaviours.append(("slow", 1.0))
        with pytest.raises(APITimeoutError) as caught:
            asyncio.run(judge.extract_points("The baselines are weak."))
    assert unreachable_message(caught.value) == (
        f"no answer from {server.base_url}/chat/completions (Request timed out.); check the address (--base_url or "
        "OPENAI_BASE_URL), that the server is running and that this machine can reach it, or give a slow server "
        "more seconds a request with --timeout_s")


REFUSED = [
    (["--max_calls=0"], "error: --max_calls must be a whole number of 1 or more (chat judge calls at most, e.g. "
                        "1000), or left out for no limit, got 0"),
    (["--max_tokens=0"], "error: --max_tokens must be a whole number of 1 or more (chat judge tokens at most, e.g. "
                         "2000000), or left out for no limit, got 0"),
    (["--max_dollars=0", "--dollars_per_1k_prompt=0", "--dollars_per_1k_completion=0"],
     "error: --max_dollars must be a number above 0, in USD, or left out for no limit (got 0.0)"),
    (["--concurrency=0"], "error: --concurrency must be a whole number of 1 or more (chat judge calls in flight, e.g. "
                          "8), got 0"),
    (["--timeout_s=0"], "error: --timeout_s must be a number of seconds above 0 (how long one API request may take "
                        "before the client retries it, e.g. 120), got 0.0"),
    (["--timeout_s=-5"], "error: --timeout_s must be a number of seconds above 0 (how long one API request may take "
                         "before the client retries it, e.g. 120), got -5.0"),
    (["--timeout_s=abc"], "error: --timeout_s expects float, got 'abc'"),  # the command line's type check: exit 2
]


@pytest.mark.parametrize("flags, line", REFUSED, ids=[" ".join(flags) for flags, _ in REFUSED])
def test_a_setting_that_would_stop_or_fail_every_call_is_refused_in_one_line(inputs, tmp_path, flags, line):
    proc = evaluate_cli("http://127.0.0.1:9/v1", inputs, tmp_path, *flags)  # refused before any call could be made
    assert proc.returncode == (2 if "expects" in line else 1) and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == line
    assert not (tmp_path / "runs").exists()
