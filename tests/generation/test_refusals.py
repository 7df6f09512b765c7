"""generate refuses a bad setting at once, in one line naming the flag (``--flag``), before it writes anything: no
reviews file, no ``.lock``, no answer cache is left behind; and a finished run leaves no ``.lock`` either."""

import time

import pytest

from lightning_review.errors import UserError
from lightning_review.generation.command import generate, run_setting_problems
from lightning_review.generation.output import ReviewsFile, lock_path
from tests.conftest import run_cli
from tests.openai_server import API_KEY, FakeOpenAI

MODEL = "gpt-4-1106-preview"


def left_behind(tmp_path, papers) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p != papers)


REFUSALS = {
    "no encoding": (["--api_model=m1"], True,
                    "error: no known tiktoken encoding for model 'm1': pass the one it uses, --encoding cl100k_base "
                    "(GPT-4, GPT-3.5) or --encoding o200k_base (GPT-4o), or --max_context 0 to send papers whole "
                    "(uncounted)"),
    "negative context": ([f"--api_model={MODEL}", "--max_context=-1"], True,
                         "error: --max_context must be 0 (no cut: papers sent whole) or a positive number of tokens, "
                         "got -1"),
    # as every length setting: RoPE's float32 positions hold whole numbers only up to 2**24 (it had no upper bound)
    "context beyond 2**24": ([f"--api_model={MODEL}", "--max_context=16777217"], True,
                             "error: --max_context 16777217: give at most 16,777,216 (2**24) tokens: the model's "
                             "RoPE takes positions as float32, which holds whole numbers exactly only up to 2**24, so "
                             "further tokens would share a position's rotation"),
    "no room": ([f"--api_model={MODEL}", "--max_context=100", "--max_new_tokens=100"], True,
                "error: --max_new_tokens 100 leaves no room for a paper in --max_context 100; lower --max_new_tokens "
                "or raise --max_context (0 sends papers whole)"),
    "no key": ([f"--api_model={MODEL}"], False,
               "error: OPENAI_API_KEY is not set: the API's key is read from the environment only (never from a "
               "flag); export OPENAI_API_KEY=<your key> (any non-empty value for a local server that checks none) "
               "and run again; for an OpenAI-compatible server instead of OpenAI's, give its address with "
               "--base_url (or OPENAI_BASE_URL)"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_run_says_why_in_one_line_and_leaves_no_file(case, papers, tmp_path, monkeypatch):
    args, with_key, line = REFUSALS[case]
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    if with_key:
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    else:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    proc = run_cli("generate", f"--papers={papers}", f"--output_file={tmp_path / 'r.jsonl'}", *args, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == line
    assert "generate (api)" not in proc.stderr  # refused before the progress bar
    assert left_behind(tmp_path, papers) == []
    assert API_KEY not in proc.stdout + proc.stderr


@pytest.mark.parametrize("max_context", [2**24 + 1, 99999999999999])
def test_a_local_max_context_beyond_ropes_float32_positions_is_refused_before_the_model_loads(max_context, papers,
                                                                                           tmp_path, tiny_llama_dir):
    with pytest.raises(UserError, match=rf"^--max_context {max_context}: give at most 16,777,216 \(2\*\*24\) tokens: "
                                        "the model's RoPE takes positions as float32"):
        generate(str(papers), str(tmp_path / "r.jsonl"), model_dir=str(tiny_llama_dir), max_context=max_context)
    assert left_behind(tmp_path, papers) == []
    # the bound itself is a context a run may ask for
    assert "--max_context" not in " ".join(run_setting_problems(8, 1, 5, None, 2**24))


@pytest.mark.parametrize("base_url, shown", [("127.0.0.1:{port}", "127.0.0.1:{port}"),
                                             ("localhost:{port}/v1", "localhost:{port}/v1"),
                                             ("user:{key}@127.0.0.1:{port}/v1?api-key={key}", "127.0.0.1:{port}/v1")])
def test_an_address_without_a_scheme_is_refused_at_once(base_url, shown, papers, tmp_path, key, dead_port):
    base_url, shown = (s.format(port=dead_port, key=API_KEY) for s in (base_url, shown))
    started = time.perf_counter()
    proc = run_cli("generate", f"--papers={papers}", f"--api_model={MODEL}", f"--base_url={base_url}",
                   f"--output_file={tmp_path / 'bu.jsonl'}", cwd=tmp_path)
    assert time.perf_counter() - started < 8  # not retried with backoff
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == f"error: --base_url must start with http:// or https:// (got {shown})"
    assert "kept in" not in proc.stderr and API_KEY not in proc.stdout + proc.stderr
    assert left_behind(tmp_path, papers) == []


SECRET = "sk-secret-pass"  # a password in the address: no environment variable holds it to be searched for


@pytest.mark.parametrize("setting, address, line", [
    ("--base_url", f"user:{SECRET}@127.0.0.1:{{port}}/v1",
     "error: --base_url must start with http:// or https:// (got 127.0.0.1:{port}/v1)"),
    ("OPENAI_BASE_URL", f"user:{SECRET}@127.0.0.1:{{port}}/v1",
     "error: OPENAI_BASE_URL must start with http:// or https:// (got 127.0.0.1:{port}/v1)"),
    # a password holding '/' ends the host early: it was recorded as the endpoint and shown as the address
    ("--base_url", "http://user:sk-secret/pass@127.0.0.1:{port}/v1",
     "error: --base_url cannot be read as an address (not shown: it may hold a password): write it as "
     "http(s)://host[:port]/path, with no blank, and with any '/', '?', '#' or '@' in a user name or password "
     "percent-encoded (%2F, %3F, %23, %40)"),
    ("OPENAI_BASE_URL", "http://user:sk-secret pass@127.0.0.1:{port}/v1",
     "error: OPENAI_BASE_URL cannot be read as an address (not shown: it may hold a password): write it as "
     "http(s)://host[:port]/path, with no blank, and with any '/', '?', '#' or '@' in a user name or password "
     "percent-encoded (%2F, %3F, %23, %40)"),
])
def test_an_address_holding_a_password_is_refused_without_showing_it(setting, address, line, papers, tmp_path, key,
                                                                     dead_port):
    address, line = address.format(port=dead_port), line.format(port=dead_port)
    flag = [f"--base_url={address}"] if setting == "--base_url" else []
    env = {"OPENAI_BASE_URL": address} if setting == "OPENAI_BASE_URL" else {}
    proc = run_cli("generate", f"--papers={papers}", f"--api_model={MODEL}", *flag, "--max_retries=0",
                   f"--output_file={tmp_path / 'bu.jsonl'}", cwd=tmp_path, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == line
    assert "secret" not in proc.stdout + proc.stderr
    assert left_behind(tmp_path, papers) == []


def test_openai_base_url_without_a_scheme_is_named(papers, tmp_path, key, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "127.0.0.1:9")
    with pytest.raises(UserError, match=r"^OPENAI_BASE_URL must start with http:// or https:// \(got 127.0.0.1:9\)$"):
        generate(str(papers), str(tmp_path / "r.jsonl"), api_model=MODEL)
    assert left_behind(tmp_path, papers) == []


def test_no_reviews_are_claimed_kept_when_none_were_written(papers, tmp_path, key, dead_port):
    out = tmp_path / "r.jsonl"
    with pytest.raises(UserError) as caught:
        generate(str(papers), str(out), api_model=MODEL, base_url=f"http://127.0.0.1:{dead_port}/v1", max_retries=0)
    message = str(caught.value)
    assert message.endswith("No review was written; run the same command again once the API answers")
    assert "kept in" not in message and not out.exists() and not lock_path(out).exists()


def test_a_finished_run_and_a_refused_resume_leave_no_lock_file(papers, tmp_path, key):
    out = tmp_path / "r.jsonl"
    with FakeOpenAI() as server:
        generate(str(papers), str(out), api_model=MODEL, base_url=server.base_url, max_new_tokens=16)
        assert left_behind(tmp_path, papers) == ["r.cache.sqlite", "r.jsonl"]
        with pytest.raises(UserError, match="written with other settings"):
            generate(str(papers), str(out), api_model=MODEL, base_url=server.base_url, max_new_tokens=16,
                     temperature=0.5)
    assert left_behind(tmp_path, papers) == ["r.cache.sqlite", "r.jsonl"]


def test_the_lock_still_stops_a_second_writer_and_is_not_removed_by_it(tmp_path):
    out = tmp_path / "r.jsonl"
    with ReviewsFile(out, {"backend": "openai"}) as first:
        with pytest.raises(UserError, match="is being written by another generate process"):
            ReviewsFile(out, {"backend": "openai"})
        assert lock_path(out).exists()  # the refused run took nothing away from the one writing
        first.write({"id": "p0", "review": "ok"})
    assert not lock_path(out).exists()
    with ReviewsFile(out, {"backend": "openai"}) as again:  # and the next run locks it anew
        assert again.done == {"p0"} and lock_path(out).exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_new_tokens=0), "--max_new_tokens must be at least 1, got 0"),
    (dict(temperature=-1.0), "--temperature must be >= 0 (0 is greedy), got -1.0"),
    (dict(top_p=0.0), "--top_p must be in (0, 1], got 0.0"),
    (dict(shard="2/2"), "--shard must be i/n with 0 <= i < n (e.g. 0/2 and 1/2 for two GPUs), got '2/2'"),
    (dict(api_model=MODEL, model_dir="m"),
     "--api_model is the API backend; leave --model_dir and --adapter_dir out (or --api_model)"),
    (dict(), "give either --model_dir (a merged or plain Llama checkpoint directory) or --adapter_dir (an adapter "
             "written by lightning_review, with --checkpoint_dir if its base moved), or --api_model for an API model"),
    (dict(max_context=-5), "--max_context must be 0 (the model's context, as when left out) or a positive number "
                           "of tokens, got -5"),
])
def test_every_error_names_its_flag(kwargs, message, papers, tmp_path, key):
    with pytest.raises(UserError) as caught:
        generate(str(papers), str(tmp_path / "r.jsonl"), **kwargs)
    assert str(caught.value) == message
    assert left_behind(tmp_path, papers) == []


def test_output_over_the_papers_names_the_flag(papers, tmp_path, key):
    with pytest.raises(UserError, match=r"^--output_file=.* is the input file .*; give --output_file another path$"):
        generate(str(papers), str(papers), api_model=MODEL)
