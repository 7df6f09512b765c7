"""The API backend against a real local HTTP server speaking the OpenAI protocol: same output format, truncation,
concurrency, retries, the answer cache, resume after a failure, and the key kept out of every file."""

import json

import pytest

from lightning_review.generation.command import generate
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
