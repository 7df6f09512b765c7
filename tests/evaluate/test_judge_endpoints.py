"""One model name at two endpoints is two judges: their answers are cached apart and they are named apart in the
report (the endpoint, never a credential, in the name when it is not the environment's default); the same judge
given twice is refused; answers cached before endpoints were keyed are asked again, never taken for another
server's."""

import asyncio

import pytest

from lightning_review.answer_cache import AnswerCache, call_key
from lightning_review.errors import UserError
from lightning_review.evaluate.chat_judge import EXTRACT_VERSION, ChatJudge
from lightning_review.evaluate.command import make_judges
from lightning_review.evaluate.evaluator import EvaluationInput, evaluate
from tests.openai_server import API_KEY, FakeOpenAI

REVIEW = "The baselines are weak. The proofs are unclear"
OTHER = "The baselines are weak. The datasets are small"


@pytest.fixture
def servers(monkeypatch):
    with FakeOpenAI() as default, FakeOpenAI() as other:
        monkeypatch.setenv("OPENAI_BASE_URL", default.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        yield default, other


def test_one_model_at_two_endpoints_is_two_judges_with_their_own_answers(servers, tmp_path):
    default, other = servers
    judges = make_judges(["openai:gpt-4-1106-preview", f"openai:gpt-4-1106-preview@{other.base_url}/"],
                         str(tmp_path / "cache.sqlite"), 4, {})
    assert [j.name for j in judges] == ["gpt-4-1106-preview", f"gpt-4-1106-preview@{other.base_url}"]
    data = EvaluationInput({"p0": [REVIEW]}, {"ours": {"p0": OTHER}})
    result = asyncio.run(evaluate(data, judges, resamples=10, controls=()))
    assert default.chat_calls > 0 and other.chat_calls == default.chat_calls  # neither took the other's answers
    assert set(result["systems"]["ours"]) == {j.name for j in judges}
    (pair,) = result["judge_pair_agreement"]
    assert pair["judges"] == [j.name for j in judges]


def test_the_same_judge_twice_is_refused_however_written(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # no call is made
    with pytest.raises(UserError, match=r"--judges: 'openai:gpt-4-1106-preview' and 'openai:gpt-4-1106-preview@"
                                        r"http://127\.0\.0\.1:9/v1' are the same judge \(gpt-4-1106-preview at "
                                        r"http://127\.0\.0\.1:9/v1\).*list each judge once"):
        make_judges(["openai:gpt-4-1106-preview", "openai:gpt-4-1106-preview@http://127.0.0.1:9/v1/"],
                    str(tmp_path / "cache.sqlite"), 4, {})
    secret = "http://user:sk-secret-9@example.org/v1"
    with pytest.raises(UserError, match="are the same judge") as caught:
        make_judges([f"openai:m@{secret}", f"openai:m@{secret}"], str(tmp_path / "cache.sqlite"), 4, {})
    assert "sk-secret-9" not in str(caught.value) and "openai:m@http://example.org/v1" in str(caught.value)
    judge = ChatJudge("m", AnswerCache(tmp_path / "cache.sqlite"), base_url=secret + "?api-key=sk-secret-9")
    with pytest.raises(UserError, match=r"judges \['m@http://example\.org/v1'\] are given twice"):
        asyncio.run(evaluate(EvaluationInput({"p0": [REVIEW]}, {"ours": {"p0": OTHER}}), [judge, judge]))
    assert "sk-secret-9" not in judge.name


def test_an_answer_cached_without_its_endpoint_is_not_taken_for_any_server(servers, tmp_path):
    default, _ = servers
    cache = AnswerCache(tmp_path / "cache.sqlite")
    old_key = call_key("gpt-4-1106-preview", EXTRACT_VERSION, {"review": REVIEW})  # as keys were written before
    cache.put(old_key, "gpt-4-1106-preview", EXTRACT_VERSION, {"points": [{"summary": "another server's answer"}]})
    points = asyncio.run(ChatJudge("gpt-4-1106-preview", cache).extract_points(REVIEW))
    assert default.chat_calls == 1 and points == ["The baselines are weak", "The proofs are unclear"]
