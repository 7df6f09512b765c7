"""The API backend's answer cache tells servers apart: one model name at two servers is two models."""

from lightning_review.generation.command import generate
from tests.conftest import write_jsonl
from tests.openai_server import API_KEY, FakeOpenAI

MODEL = "gpt-4-1106-preview"


def test_one_model_name_at_two_servers_shares_no_cached_review(tmp_path, monkeypatch):
    papers = write_jsonl(tmp_path / "papers.jsonl", [{"id": "p0", "paper": "Paper 0 studies graph diffusion."}])
    cache = tmp_path / "answers.sqlite"
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    with FakeOpenAI() as first, FakeOpenAI() as second:
        monkeypatch.setenv("OPENAI_BASE_URL", first.base_url)
        assert generate(str(papers), str(tmp_path / "a.jsonl"), api_model=MODEL, cache_file=str(cache))["api_calls"] == 1
        again = generate(str(papers), str(tmp_path / "b.jsonl"), api_model=MODEL, cache_file=str(cache))
        assert again["api_calls"] == 0  # the same server: its cached answer
        other = generate(str(papers), str(tmp_path / "c.jsonl"), api_model=MODEL, cache_file=str(cache),
                         base_url=second.base_url)
        assert other["api_calls"] == 1 and len(second.chat_requests) == 1  # the other server was asked
