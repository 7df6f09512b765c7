"""Each chat judge at its own prices (--judge_prices): the report's dollars per judge and in total, the panel's
--max_dollars counting each judge at its own, bad entries refused before any call, and the single price pair of
--dollars_per_1k_* working as before."""

import asyncio
import json

import pytest

from lightning_review.errors import UserError
from lightning_review.evaluate.chat_judge import BudgetExceeded
from lightning_review.evaluate.command import evaluate, make_judges
from tests.conftest import run_cli
from tests.openai_server import API_KEY

REVIEW = "The baselines are weak. The proofs are unclear. The datasets are small"


def specs_of(server):
    """Two chat judges of the fake server: (spec of the pricey one, spec of the cheap one)."""
    return f"openai:gpt-4-1106-preview@{server.base_url}", f"openai:gpt-3.5-turbo@{server.base_url}"


def run(inputs, tmp_path, judges, **settings) -> dict:
    human, ours = inputs
    return evaluate(str(human), {"ours": str(ours)}, judges=list(judges), output_dir=str(tmp_path / "out"),
                    resamples=10, controls=[], **settings)


def cost(usage: dict, prompt: float, completion: float) -> float:
    return (usage["prompt_tokens"] * prompt + usage["completion_tokens"] * completion) / 1000


def usage_row(judge: str, usage: dict, dollars: str) -> str:
    return (f"| {judge} | {usage['calls']} | {usage['prompt_tokens']:,} | {usage['completion_tokens']:,} | "
            f"{dollars} |")


def test_two_judges_at_different_prices_are_reported_each_at_its_own_and_in_total(server, inputs, tmp_path):
    pricey, cheap = specs_of(server)
    result = run(inputs, tmp_path, [pricey, cheap],
                 judge_prices={pricey: "10:30", cheap.removeprefix("openai:"): "0.5:1.5"})  # the report's name works
    usage = result["usage_this_run"]
    (pricey_name, pricey_use), (cheap_name, cheap_use) = usage.items()
    assert pricey_use["calls"] > 0 and cheap_use["calls"] > 0
    assert pricey_use["dollars"] == pytest.approx(cost(pricey_use, 10, 30))
    assert cheap_use["dollars"] == pytest.approx(cost(cheap_use, 0.5, 1.5))
    report = (tmp_path / "out" / "report.md").read_text()
    assert usage_row(pricey_name, pricey_use, f"{cost(pricey_use, 10, 30):.2f}") in report
    assert usage_row(cheap_name, cheap_use, f"{cost(cheap_use, 0.5, 1.5):.2f}") in report
    total = {key: pricey_use[key] + cheap_use[key] for key in ("calls", "prompt_tokens", "completion_tokens")}
    dollars = cost(pricey_use, 10, 30) + cost(cheap_use, 0.5, 1.5)
    assert usage_row("**total**", total, f"{dollars:.2f}") in report


def test_a_judge_not_listed_is_counted_at_the_single_pair_and_one_without_price_is_unknown(server, inputs, tmp_path):
    pricey, cheap = specs_of(server)
    priced = run(inputs, tmp_path, [pricey, cheap], judge_prices={pricey: "10:30"},
                 dollars_per_1k_prompt=0.5, dollars_per_1k_completion=1.5)["usage_this_run"]
    (_, pricey_use), (_, cheap_use) = priced.items()
    assert pricey_use["dollars"] == pytest.approx(cost(pricey_use, 10, 30))
    assert cheap_use["dollars"] == pytest.approx(cost(cheap_use, 0.5, 1.5))

    unpriced = run(inputs, tmp_path / "again", [pricey, cheap], judge_prices={pricey: "10:30"})["usage_this_run"]
    (_, pricey_use), (cheap_name, cheap_use) = unpriced.items()
    assert pricey_use["dollars"] == pytest.approx(cost(pricey_use, 10, 30))
    assert cheap_use["dollars"] is None  # unknown, never $0
    report = (tmp_path / "again" / "out" / "report.md").read_text()
    assert usage_row(cheap_name, cheap_use, "n/a (no prices given)") in report
    total_row = next(line for line in report.splitlines() if line.startswith("| **total** |"))
    assert total_row.endswith("| n/a (no prices given) |")  # one judge's dollars unknown: the total's too


def test_the_dollar_budget_counts_each_judge_at_its_own_prices(server, tmp_path):
    pricey, cheap = specs_of(server)
    max_dollars = 3.0
    judges = make_judges([pricey, cheap], str(tmp_path / "cache.sqlite"), 1, {"max_dollars": max_dollars},
                         judge_prices={pricey: "10:30", cheap: "0.01:0.03"})
    prices = [(10, 30), (0.01, 0.03)]

    def spent() -> float:  # each judge's tokens at its own prices
        return sum(cost(vars(j.budget), *pair) for j, pair in zip(judges, prices))

    seen = []

    async def extract_all():
        for k in range(20):
            for j in judges:
                await j.extract_points(f"{REVIEW} number {k}")
                seen.append(spent())

    with pytest.raises(BudgetExceeded, match=r"dollar budget of \$3 reached"):
        asyncio.run(extract_all())
    assert seen[-1] >= max_dollars and all(dollars < max_dollars for dollars in seen[:-1])  # stopped at the first
    assert server.chat_calls == len(seen)  # no call after the limit was reached
    assert judges[0].budget.shared.dollars == pytest.approx(seen[-1])
    tokens = sum(j.budget.prompt_tokens + j.budget.completion_tokens for j in judges)
    assert tokens * 0.03 / 1000 < max_dollars  # at the cheap judge's prices for all, it would not have stopped


def test_a_run_past_its_dollar_budget_at_mixed_prices_stops(server, inputs, tmp_path):
    pricey, cheap = specs_of(server)
    with pytest.raises(SystemExit, match=r"stopped: dollar budget of \$0\.01 reached"):
        run(inputs, tmp_path, [pricey, cheap], max_dollars=0.01, judge_prices={pricey: "10:30", cheap: "0.01:0.03"})


# (case, --judge_prices, other settings, the error's text)
BAD = [
    ("unknown judge", {"openai:gpt-5": "1:2"}, {},
     r"--judge_prices 'openai:gpt-5' is not a chat judge of --judges \(openai:gpt-4-1106-preview@.*, "
     r"openai:gpt-3\.5-turbo@.*\); name each as --judges does, e\.g\. --judge_prices '\{\"openai:gpt-4"),
    ("the offline judge", {"embedding": "1:2"}, {}, r"--judge_prices: 'embedding' is the offline judge"),
    ("negative", {"PRICEY": "-1:2"}, {}, r"--judge_prices 'openai:gpt-4-1106-preview@.*': '-1:2' is not two "
                                         r"prices of 0 or more; write two prices of 0 or more \(0 for a free "
                                         r"judge\), USD per 1K prompt then completion tokens, e\.g\. --judge_prices"),
    ("not a number", {"PRICEY": "1:cheap"}, {}, r"'1:cheap' is not two prices of 0 or more"),
    ("one price", {"PRICEY": "0.01"}, {}, r"'0\.01' is not '<prompt>:<completion>'; write two prices"),
    ("a number, not text", {"PRICEY": 0.01}, {}, r"0\.01 is not '<prompt>:<completion>'"),
    ("one judge twice", {"PRICEY": "1:2", "gpt-4-1106-preview@URL": "3:4"}, {},
     r"--judge_prices: 'openai:gpt-4-1106-preview@.*' and 'gpt-4-1106-preview@.*' are the same judge; give its "
     r"prices once"),
    ("a dollar budget with a judge unpriced", {"PRICEY": "1:2"}, {"max_dollars": 5},
     r"--max_dollars 5 cannot apply without every chat judge's prices: openai:gpt-3\.5-turbo@.* has none \(in "
     r"--judge_prices or --dollars_per_1k_prompt/--dollars_per_1k_completion\), so its calls would count \$0 "
     r"against it; add it to --judge_prices"),
    ("a lone single price beside them", {"PRICEY": "1:2"}, {"dollars_per_1k_prompt": 0.01},
     r"--dollars_per_1k_prompt is given but --dollars_per_1k_completion is not"),
]


@pytest.mark.parametrize("case,prices,settings,message", BAD, ids=[c[0] for c in BAD])
def test_bad_prices_are_refused_before_any_call(server, inputs, tmp_path, case, prices, settings, message):
    pricey, cheap = specs_of(server)
    prices = {key.replace("PRICEY", pricey).replace("URL", server.base_url): value for key, value in prices.items()}
    with pytest.raises(UserError, match=message):
        run(inputs, tmp_path, [pricey, cheap], judge_prices=prices, **settings)
    assert server.chat_calls == 0 and not (tmp_path / "out").exists()


def test_a_dollar_budget_priced_for_every_judge_with_no_single_pair_runs(server, inputs, tmp_path):
    pricey, cheap = specs_of(server)
    result = run(inputs, tmp_path, [pricey, cheap], max_dollars=1000, judge_prices={pricey: "10:30", cheap: "1:3"})
    assert all(u["dollars"] > 0 for u in result["usage_this_run"].values())


def test_a_bad_entry_on_the_command_line_is_one_error_line(server, inputs, tmp_path):
    human, ours = inputs
    proc = run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                   '--judges=["openai:m"]', '--judge_prices={"openai:m": "0.01/0.03"}',
                   f"--output_dir={tmp_path / 'out'}", cwd=tmp_path,
                   env={"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": server.base_url})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --judge_prices 'openai:m': '0.01/0.03' is not '<prompt>:<completion>'; write two prices of 0 or "
        "more (0 for a free judge), USD per 1K prompt then completion tokens, e.g. --judge_prices "
        "'{\"openai:m\": \"0.01:0.03\"}'")
    assert server.chat_calls == 0 and not (tmp_path / "out").exists()


def test_the_single_price_pair_prices_every_judge_as_before_and_the_report_totals_them(server, inputs, tmp_path):
    pricey, cheap = specs_of(server)
    result = run(inputs, tmp_path, [pricey, cheap], dollars_per_1k_prompt=0.01, dollars_per_1k_completion=0.03)
    usages = list(result["usage_this_run"].values())
    assert all(u["calls"] > 0 and u["dollars"] == pytest.approx(cost(u, 0.01, 0.03)) for u in usages)
    total = {key: sum(u[key] for u in usages) for key in ("calls", "prompt_tokens", "completion_tokens")}
    dollars = sum(cost(u, 0.01, 0.03) for u in usages)
    assert usage_row("**total**", total, f"{dollars:.2f}") in (tmp_path / "out" / "report.md").read_text()
    with pytest.raises(UserError, match=r"^--max_dollars 5 cannot apply without the judge's prices: "
                                        r"--dollars_per_1k_prompt and --dollars_per_1k_completion are not given"):
        run(inputs, tmp_path / "refused", [pricey, cheap], max_dollars=5)
