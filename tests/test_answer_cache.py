"""The API answer cache (judges, API generation) survives a restart and keeps calls of other prompts apart."""

from lightning_review.answer_cache import AnswerCache, call_key


def test_cache_round_trip_across_connections_and_usage(tmp_path):
    key = call_key("gpt-4-1106-preview", "match-v1", {"a": ["x"], "b": ["y"]})
    cache = AnswerCache(tmp_path / "judge.sqlite")
    assert cache.get(key) is None
    cache.put(key, "gpt-4-1106-preview", "match-v1", {"pairs": [[0, 0, 8]]}, prompt_tokens=100, completion_tokens=20)
    cache.close()
    reopened = AnswerCache(tmp_path / "judge.sqlite")
    assert reopened.get(key) == {"pairs": [[0, 0, 8]]}
    assert reopened.usage() == {"gpt-4-1106-preview": {"calls": 1, "prompt_tokens": 100, "completion_tokens": 20}}
    assert call_key("gpt-4-1106-preview", "match-v2", {"a": ["x"], "b": ["y"]}) != key  # new prompt, new entry
