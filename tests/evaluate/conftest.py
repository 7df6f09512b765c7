"""Inputs shared by evaluate's tests: three papers, each with two human reviews and one of ours."""

import pytest

from tests.conftest import write_jsonl

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
