"""Shared by evaluate's tests: three papers, each with two human reviews and one of ours; the fake OpenAI server
of the budget and price tests."""

import pytest

from tests.conftest import write_jsonl
from tests.openai_server import API_KEY, FakeOpenAI

REVIEW = "The experiments lack strong recent baselines. The proof of Theorem 2 assumes convexity."


@pytest.fixture
def inputs(tmp_path):
    """(human file, ours file): two human reviews a paper, the second with one more point than the first."""
    human = write_jsonl(tmp_path / "human.jsonl", [
        {"id": f"p{k}", "paper": f"Paper {k} studies graphs. " * 10,
         "reviews": [{"text": REVIEW, "rating": 6}, {"text": REVIEW + " Also typos.", "rating": 5}]}
        for k in range(3)])
    ours = write_jsonl(tmp_path / "ours.jsonl", [{"id": f"p{k}", "review": REVIEW} for k in range(3)])
    return human, ours


@pytest.fixture(scope="module")
def shared_server():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def server(shared_server, monkeypatch):
    """The module's server (one start and stop for all), its count of chat calls from 0 for each test."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    shared_server.chat_calls = 0
    return shared_server
