"""The judge-call cache survives a restart; offline point splitting follows the review's own structure."""

from lightning_review.answer_cache import AnswerCache, call_key
from lightning_review.evaluate.points import split_points


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


def test_numbered_and_bulleted_items_become_points():
    review = """Summary: the paper proposes X.
1. The evaluation uses only two small datasets, which limits the claims.
2) The ablation of the attention module is missing entirely.
- Typos.
- The related work omits the closest prior method by Smith et al."""
    assert split_points(review) == [
        "The evaluation uses only two small datasets, which limits the claims.",
        "The ablation of the attention module is missing entirely.",
        "The related work omits the closest prior method by Smith et al.",
    ]


def test_prose_review_is_split_into_sentences():
    review = ("The method is novel and clearly motivated. However, the experiments lack strong baselines. "
              "Ok. The theory section assumes convexity without saying so.")
    assert split_points(review) == ["The method is novel and clearly motivated.",
                                    "However, the experiments lack strong baselines.",
                                    "The theory section assumes convexity without saying so."]
