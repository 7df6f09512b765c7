"""The dollar budget: refused without the judge's prices (it would count every call at $0 and never stop the run),
applied with them, and held by all chat judges together; without prices the report's dollars are n/a, not $0."""

import asyncio

import pytest

from lightning_review.answer_cache import AnswerCache
from lightning_review.errors import UserError
from lightning_review.evaluate.chat_judge import Budget, BudgetExceeded, ChatJudge
from lightning_review.evaluate.command import evaluate, make_judges
from lightning_review.evaluate.evaluator import EvaluationInput, evaluate as run_evaluation
from lightning_review.evaluate.report import markdown
from tests.conftest import write_jsonl
from tests.openai_server import API_KEY

REVIEW = "The baselines are weak. The proofs are unclear. The datasets are small"


@pytest.mark.parametrize("prices, message", [
    ({}, r"--max_dollars 0\.0001 cannot apply without the judge's prices: --dollars_per_1k_prompt and "
         r"--dollars_per_1k_completion are not given, so calls would count \$0 against it and it would never stop "
         r"the run\. Give both prices"),
    ({"dollars_per_1k_prompt": 0.01}, r"--dollars_per_1k_completion is not given"),
    ({"dollars_per_1k_prompt": -1, "dollars_per_1k_completion": 0.03},
     r"--dollars_per_1k_prompt must be a number of 0 or more, in USD per 1K prompt tokens \(got -1\)"),
])
def test_a_dollar_budget_without_prices_is_refused_before_any_call(server, tmp_path, prices, message):
    human = write_jsonl(tmp_path / "human.jsonl", [{"id": "p0", "paper": "A paper.", "reviews": [REVIEW, REVIEW]}])
    ours = write_jsonl(tmp_path / "ours.jsonl", [{"id": "p0", "review": REVIEW}])
    with pytest.raises(UserError, match=message):
        evaluate(str(human), {"ours": str(ours)}, judges=[f"openai:gpt-4-1106-preview@{server.base_url}"],
                 output_dir=str(tmp_path / "out"), max_dollars=0.0001, resamples=10, **prices)
    assert server.chat_calls == 0


def test_nan_limits_and_a_lone_price_are_refused():
    with pytest.raises(UserError,
                       match=r"--max_dollars must be a number above 0, in USD, or left out for no limit \(got nan\)"):
        Budget(max_dollars=float("nan"), dollars_per_1k_prompt=0.01, dollars_per_1k_completion=0.03)
    with pytest.raises(UserError, match="--dollars_per_1k_prompt is given but --dollars_per_1k_completion is not"):
        Budget(dollars_per_1k_prompt=0.01)


def test_with_prices_the_dollar_budget_stops_the_run(server, tmp_path):
    budget = Budget(max_dollars=0.0001, dollars_per_1k_prompt=0.01, dollars_per_1k_completion=0.03)
    j = ChatJudge("gpt-4-1106-preview", AnswerCache(tmp_path / "cache.sqlite"), base_url=server.base_url,
                  api_key=API_KEY, budget=budget, concurrency=1)

    async def extract_all():
        for k in range(20):
            await j.extract_points(f"{REVIEW} number {k}")

    with pytest.raises(BudgetExceeded, match=r"dollar budget of \$0\.0001 reached"):
        asyncio.run(extract_all())
    assert 0 < server.chat_calls < 20 and budget.dollars >= 0.0001


def test_the_budget_holds_for_all_chat_judges_together(server, tmp_path):
    specs = [f"openai:gpt-4-1106-preview@{server.base_url}", f"openai:gpt-4-0125-preview@{server.base_url}"]
    judges = make_judges(specs, str(tmp_path / "cache.sqlite"), 1, {"max_calls": 3})

    async def extract_all():
        for k in range(3):
            for j in judges:
                await j.extract_points(f"{REVIEW} number {k}")

    with pytest.raises(BudgetExceeded, match="call budget of 3 reached"):
        asyncio.run(extract_all())
    assert server.chat_calls == 3 and [j.budget.calls for j in judges] == [2, 1]  # each judge counts its own


def test_without_prices_the_report_gives_no_dollar_figure(server, tmp_path):
    j = ChatJudge("gpt-4-1106-preview", AnswerCache(tmp_path / "cache.sqlite"), base_url=server.base_url,
                  api_key=API_KEY)
    data = EvaluationInput({"p0": [REVIEW]}, {"ours": {"p0": REVIEW}})
    result = asyncio.run(run_evaluation(data, [j], resamples=10, controls=()))
    (usage,) = result["usage_this_run"].values()
    assert usage["calls"] > 0 and usage["dollars"] is None
    tokens = f"| {usage['prompt_tokens']:,} | {usage['completion_tokens']:,} |"
    assert f"{tokens} n/a (no prices given) |" in markdown(result)
