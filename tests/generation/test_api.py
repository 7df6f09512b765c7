"""The API backend against a real local HTTP server speaking the OpenAI protocol: same output format, truncation,
concurrency, retries, the answer cache, resume after a failure, and the key kept out of every file; an address
where nothing listens, two processes on one file, ids written twice, an interrupted overwrite."""

import json
import threading
import time

import pytest

from lightning_review.errors import UserError
from lightning_review.generation.command import generate
from lightning_review.generation.output import ReviewsFile
from tests.conftest import run_cli, write_jsonl
from tests.openai_server import API_KEY, FakeOpenAI

MODEL = "gpt-4-1106-preview"


@pytest.fixture()
def server(monkeypatch):
    with FakeOpenAI() as server:
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


@pytest.fixture()
def papers(tmp_path):
    rows = [{"id": f"p{i}", "paper": f"Paper {i} studies graph diffusion for segmentation number {i}."}
            for i in range(6)]
    rows[5]["paper"] = "Long paper. " + "word " * 3000
    return write_jsonl(tmp_path / "papers.jsonl", rows)


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_api_reviews_in_the_local_output_format_with_the_paper_cut_to_the_context(server, papers, tmp_path):
    out = tmp_path / "gpt4.jsonl"
    summary = generate(str(papers), str(out), api_model=MODEL, max_new_tokens=64, max_context=1000)
    rows = {r["id"]: r for r in read(out)}
    assert sorted(rows) == [f"p{i}" for i in range(6)] and summary["api_calls"] == 6
    assert rows["p1"]["review"] == "Review of: Paper 1 studies graph diffusion for segmentation number 1."
    assert {"id", "system", "review", "prompt_tokens", "generated_tokens", "truncated", "finish_reason",
            "settings"} <= set(rows["p1"])
    assert rows["p1"]["settings"]["backend"] == "openai" and rows["p1"]["settings"]["model"] == MODEL
    assert [rows[f"p{i}"]["truncated"] for i in range(6)] == [False] * 5 + [True]
    long_request = next(r for r in server.chat_requests if r["messages"][1]["content"].startswith("Long paper"))
    assert long_request["messages"][0]["content"] == rows["p5"]["system"]  # the training system prompt
    assert long_request["max_tokens"] == 64 and long_request["temperature"] == 0
    sent_words = len(long_request["messages"][1]["content"].split())
    assert 800 < sent_words < 1000  # cut to 1000 - 64 tokens of prompt (one token a word here, plus the template)
    assert rows["p5"]["finish_reason"] == "length"  # the fake reviewer echoes the paper: stopped at max_tokens


def test_rerun_costs_nothing_and_failures_are_retried(server, papers, tmp_path):
    server.faults["POST /v1/chat/completions"].extend([429, 500, 500])
    first = generate(str(papers), str(tmp_path / "a.jsonl"), api_model=MODEL, max_new_tokens=16, concurrency=2,
                     max_context=None)
    assert first["written"] == 6 and server.chat_calls == 6  # three failed calls retried by the client
    again = generate(str(papers), str(tmp_path / "b.jsonl"), api_model=MODEL, max_new_tokens=16, concurrency=2,
                     cache_file=str(tmp_path / "a.cache.sqlite"), max_context=None)
    assert again["api_calls"] == 0 and server.chat_calls == 6  # answered from the cache
    assert [r["review"] for r in read(tmp_path / "a.jsonl")] != [] and \
        sorted(r["review"] for r in read(tmp_path / "a.jsonl")) == sorted(r["review"] for r in read(tmp_path / "b.jsonl"))
    for path in tmp_path.iterdir():
        assert API_KEY.encode() not in path.read_bytes(), path


def test_calls_overlap_up_to_the_concurrency_limit(server, papers, tmp_path):
    server.chat_behaviours.extend([("slow", 0.3)] * 6)
    generate(str(papers), str(tmp_path / "r.jsonl"), api_model=MODEL, max_new_tokens=16, concurrency=3,
             max_context=None)
    assert server.max_in_flight == 3


def test_a_failed_run_resumes_where_it_stopped(server, papers, tmp_path):
    out = tmp_path / "r.jsonl"
    server.faults["POST /v1/chat/completions"].extend([None, None] + [500] * 50)  # down after two answers
    with pytest.raises(Exception, match="injected 500"):
        generate(str(papers), str(out), api_model=MODEL, max_new_tokens=16, concurrency=1, max_retries=1,
                 max_context=None)
    assert len(read(out)) == 2  # what was answered is kept
    server.faults.clear()
    summary = generate(str(papers), str(out), api_model=MODEL, max_new_tokens=16, concurrency=1, max_context=None)
    ids = [r["id"] for r in read(out)]
    assert sorted(ids) == [f"p{i}" for i in range(6)]  # each paper once
    assert summary["already_written"] == 2 and summary["written"] == 4


def test_resume_refuses_other_decoding_settings(server, papers, tmp_path):
    out = tmp_path / "r.jsonl"
    generate(str(papers), str(out), api_model=MODEL, max_new_tokens=16, max_context=None, limit=2)
    with pytest.raises(ValueError, match=r"r.jsonl:1: written with other settings \(differs in temperature\)"):
        generate(str(papers), str(out), api_model=MODEL, max_new_tokens=16, max_context=None, temperature=0.7)


def test_the_command_line_keeps_the_key_out_of_its_output(server, papers, tmp_path):
    proc = run_cli("generate", f"--papers={papers}", f"--api_model={MODEL}", "--max_new_tokens=16",
                   f"--output_file={tmp_path / 'r.jsonl'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "written=6" in proc.stdout and "truncated=0" in proc.stdout
    assert API_KEY not in proc.stdout + proc.stderr + (tmp_path / "r.jsonl").read_text()


def test_an_address_where_nothing_listens_is_named_and_the_written_reviews_are_kept(server, papers, tmp_path,
                                                                                     dead_port):
    cache = str(tmp_path / "answers.sqlite")
    out = tmp_path / "r.jsonl"
    generate(str(papers), str(out), api_model=MODEL, max_new_tokens=16, max_context=None, cache_file=cache,
             limit=2)  # two reviews written: the run below resumes the file, then fails
    base_url = f"http://user:{API_KEY}@127.0.0.1:{dead_port}/v1?api-key={API_KEY}"
    # as if a server at the dead port had written them and stopped since (a resume at another server is refused)
    rows = read(out)
    for row in rows:
        row["settings"]["endpoint"] = f"http://127.0.0.1:{dead_port}/v1"
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    started = time.perf_counter()
    with pytest.raises(UserError) as caught:
        generate(str(papers), str(out), api_model=MODEL, max_new_tokens=16, max_context=None, cache_file=cache,
                 base_url=base_url, max_retries=1)
    assert time.perf_counter() - started < 10
    message = str(caught.value)
    assert f"could not connect to the API at http://127.0.0.1:{dead_port}/v1 " in message
    assert "check that the server is running" in message and "--base_url (or OPENAI_BASE_URL)" in message
    assert f"The 2 reviews written are kept in {out}" in message and API_KEY not in message
    assert read(out) == rows  # kept as they were (test_a_failed_run_resumes_where_it_stopped: a rerun continues)


def test_a_second_process_on_one_output_file_stops_at_once_and_the_first_finishes(server, papers, tmp_path,
                                                                                   monkeypatch):
    out = tmp_path / "r.jsonl"
    writing, second_done = threading.Event(), threading.Event()
    original_write = ReviewsFile.write

    def write_once_the_second_process_ended(self, record):  # the first run is mid-way while the second one starts
        writing.set()
        second_done.wait(timeout=300)
        original_write(self, record)

    monkeypatch.setattr(ReviewsFile, "write", write_once_the_second_process_ended)
    first = threading.Thread(target=generate, args=(str(papers), str(out)),
                             kwargs=dict(api_model=MODEL, max_new_tokens=16, max_context=0, concurrency=1))
    first.start()
    try:
        assert writing.wait(timeout=120)
        proc = run_cli("generate", f"--papers={papers}", f"--api_model={MODEL}", "--max_new_tokens=16",
                       "--max_context=0", "--concurrency=1", f"--output_file={out}", cwd=tmp_path)
    finally:
        second_done.set()
        first.join()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {out} is being written by another generate process (it holds {out}.lock); wait until it ends, or "
        "give this run another --output_file (two runs on one file would review the same papers twice)")
    ids = [r["id"] for r in read(out)]
    assert sorted(ids) == [f"p{i}" for i in range(6)]  # each paper once
    assert server.chat_calls == 6


def test_a_rerun_reports_ids_written_twice(server, papers, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    generate(str(papers), str(out), api_model=MODEL, max_new_tokens=16, max_context=None, limit=3)
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines + lines[:2]) + "\n")  # what two runs at once, or a double concatenation, leave
    capsys.readouterr()
    summary = generate(str(papers), str(out), api_model=MODEL, max_new_tokens=16, max_context=None)
    printed = capsys.readouterr()
    assert summary["duplicate_ids_in_output"] == 2 and summary["written"] == 3
    warning = f"warning: {out} has 2 review line(s) of an id written before (the first at {out}:4)"
    assert warning in printed.err and "warning:" not in printed.out  # stdout keeps only the summary line
    assert "duplicate_ids_in_output=2" in printed.out


def test_an_interrupted_overwrite_leaves_the_old_file_whole_and_continues(server, papers, tmp_path):
    out = tmp_path / "r.jsonl"
    generate(str(papers), str(out), api_model=MODEL, max_new_tokens=16, max_context=None)
    old = out.read_bytes()
    server.faults["POST /v1/chat/completions"].extend([None, None] + [500] * 50)  # down after two answers
    new = dict(api_model=MODEL, max_new_tokens=8, max_context=None, concurrency=1, overwrite=True)
    with pytest.raises(Exception, match="injected 500"):
        generate(str(papers), str(out), max_retries=0, **new)
    assert out.read_bytes() == old  # never truncated before the new file is complete
    server.faults.clear()
    summary = generate(str(papers), str(out), **new)
    assert summary["already_written"] == 2 and summary["written"] == 4
    rows = read(out)
    assert sorted(r["id"] for r in rows) == [f"p{i}" for i in range(6)]
    assert {r["settings"]["max_new_tokens"] for r in rows} == {8}
    assert not (tmp_path / "r.jsonl.partial").exists()
    for path in tmp_path.iterdir():
        assert API_KEY.encode() not in path.read_bytes(), path


def rate_when_asked(server, rating: str = "Rating: 6"):
    """The fake reviewer, made to follow the rating request: its review ends with ``rating`` when the system message
    asks for the line in training's words (``rating_request``), as GPT-4 does."""
    from lightning_review.data.rating_line import rating_request

    answer = server._chat

    def chat(request: dict) -> dict:
        response = answer(request)
        if request["messages"][0]["content"].endswith(rating_request(1, 10)):
            message = response["choices"][0]["message"]
            message["content"] += f"\n\n{rating}"
        return response

    server._chat = chat


def test_api_reviews_are_asked_for_the_training_targets_rating_line_and_it_is_read_back(server, papers, tmp_path):
    """An API model never saw the training targets: the system message asks for their last line in their words,
    and the line is read back into ``rating`` by the rule local generation uses (parse_rating)."""
    from lightning_review.data.prompt import DEFAULT_SYSTEM_PROMPT
    from lightning_review.data.rating_line import parse_rating, rating_request, training_target
    from lightning_review.data.records import Record

    rate_when_asked(server)
    out = tmp_path / "gpt4.jsonl"
    generate(str(papers), str(out), api_model=MODEL, max_new_tokens=64, max_context=1000, limit=2)
    request = server.chat_requests[0]
    assert request["messages"][0]["content"] == f"{DEFAULT_SYSTEM_PROMPT}\n\n{rating_request(1, 10)}"
    assert '"Rating: <number>"' in rating_request(1, 10) and "from 1 (the lowest) to 10" in rating_request(1, 10)
    target = training_target(Record(id="x", paper="p", review="A review.", rating=6), True)
    assert target.endswith("\n\nRating: 6") and parse_rating(target) == 6  # the line asked for is the trained one
    rows = read(out)
    assert [r["rating"] for r in rows] == [6.0, 6.0] and all(r["review"].endswith("\n\nRating: 6") for r in rows)
    assert rows[0]["system"] == request["messages"][0]["content"]  # the output says what was sent
    assert rows[0]["settings"]["rating_scale"] == [1.0, 10.0]


def test_the_rating_request_follows_the_scale_or_is_left_out_and_a_resume_keeps_it(server, papers, tmp_path):
    from lightning_review.data.prompt import DEFAULT_SYSTEM_PROMPT

    rate_when_asked(server)
    plain = tmp_path / "plain.jsonl"
    generate(str(papers), str(plain), api_model=MODEL, max_new_tokens=16, max_context=None, limit=1, rating_scale="")
    assert server.chat_requests[-1]["messages"][0]["content"] == DEFAULT_SYSTEM_PROMPT  # the fine-tuning prompt
    assert read(plain)[0]["rating"] is None and read(plain)[0]["system"] == DEFAULT_SYSTEM_PROMPT
    acl = tmp_path / "acl.jsonl"
    generate(str(papers), str(acl), api_model=MODEL, max_new_tokens=16, max_context=None, limit=1, rating_scale="1-5")
    assert "from 1 (the lowest) to 5 (the highest)" in server.chat_requests[-1]["messages"][0]["content"]
    with pytest.raises(ValueError, match=r"plain.jsonl:1: written with other settings \(differs in rating_scale\)"):
        generate(str(papers), str(plain), api_model=MODEL, max_new_tokens=16, max_context=None)
    for bad, says in (("ten", "is not a scale; give it as low-high"), ("10-1", "from a lower to a higher number")):
        with pytest.raises(UserError, match=f"^--rating_scale: .*{says}"):
            generate(str(papers), str(tmp_path / "x.jsonl"), api_model=MODEL, rating_scale=bad)
    assert not (tmp_path / "x.jsonl").exists()  # refused before anything is written


@pytest.mark.parametrize("behaviour, why", [("no_content", "finish_reason 'content_filter'"),
                                            ("no_choices", "no choices")])
def test_an_answer_without_text_is_an_error_not_an_empty_review_saved_and_cached(server, papers, tmp_path,
                                                                                  behaviour, why):
    """A null content (a refusal, a filtered answer) or an empty choices list stops the run naming the paper; nothing
    is written or cached for it, so the rerun asks again and writes its review."""
    out = tmp_path / "r.jsonl"
    server.chat_behaviours.extend([None, behaviour])  # the second paper's answer has no text
    with pytest.raises(UserError, match=rf"{MODEL} at http://\S+ answered paper 'p1' with no text \({why}\); "
                                        r"nothing is saved for it"):
        generate(str(papers), str(out), api_model=MODEL, max_new_tokens=16, concurrency=1, max_context=None)
    assert [r["id"] for r in read(out)] == ["p0"]
    summary = generate(str(papers), str(out), api_model=MODEL, max_new_tokens=16, concurrency=1, max_context=None)
    rows = {r["id"]: r for r in read(out)}
    assert summary["written"] == 5 and rows["p1"]["review"].startswith("Review of: Paper 1")


@pytest.mark.parametrize("fault, key, expected", [
    (500, API_KEY, "answered HTTP 500 (injected 500); the server failed (after the client's retries): run again "
                   "later; what generate and evaluate received before it is cached, and a rerun asks only for the "
                   "rest"),
    (None, "sk-wrong-key", "answered HTTP 401 (Incorrect API key provided); the key was refused: check "
                           "OPENAI_API_KEY"),
])
def test_an_http_error_answer_is_one_line_naming_the_address_the_status_and_the_fix(server, papers, tmp_path, fault,
                                                                                   key, expected):
    if fault is not None:
        server.faults["POST /v1/chat/completions"].extend([fault] * 20)
    proc = run_cli("generate", f"--papers={papers}", f"--api_model={MODEL}", "--max_new_tokens=16", "--max_retries=1",
                   f"--output_file={tmp_path / 'r.jsonl'}", cwd=tmp_path, env={"OPENAI_API_KEY": key})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {server.base_url}/chat/completions {expected}"), line
    assert key not in proc.stdout + proc.stderr
