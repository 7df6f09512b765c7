"""Fixtures shared by the openai command tests."""

import pytest

from tests.conftest import write_jsonl


@pytest.fixture
def chat_file(tmp_path):
    """Three valid chat examples, as `openai export` writes them."""
    return write_jsonl(tmp_path / "chat.jsonl", [
        {"messages": [{"role": "system", "content": "Review."}, {"role": "user", "content": f"Paper {i}."},
                      {"role": "assistant", "content": f"Review {i}."}]} for i in range(3)])
