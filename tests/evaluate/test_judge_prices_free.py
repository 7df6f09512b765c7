"""A free judge (a local server: nothing a token) is priced at $0: "0:0" in --judge_prices (or 0 for both
--dollars_per_1k_* prices) is a price, not "no price", so --max_dollars can apply to a panel that holds one and the
report shows $0.00 for it; a negative price is still refused, naming the judge and the fix."""

import json

import pytest

from lightning_review.errors import UserError
from lightning_review.evaluate.command import evaluate
from tests.evaluate.test_judge_prices import cost, run, specs_of, usage_row


def test_a_free_judge_is_reported_at_zero_dollars_beside_a_paid_one(server, inputs, tmp_path):
    paid, free = specs_of(server)
    result = run(inputs, tmp_path, [paid, free], max_dollars=1000, judge_prices={paid: "10:30", free: "0:0"})
    (paid_name, paid_use), (free_name, free_use) = result["usage_this_run"].items()
    assert free_use["calls"] > 0 and free_use["dollars"] == 0.0  # counted, at $0: not unknown
    report = (tmp_path / "out" / "report.md").read_text()
    assert usage_row(free_name, free_use, "0.00") in report
    total = {key: paid_use[key] + free_use[key] for key in ("calls", "prompt_tokens", "completion_tokens")}
    assert usage_row("**total**", total, f"{cost(paid_use, 10, 30):.2f}") in report  # a total, not n/a


def test_a_dollar_budget_never_stops_a_free_judge(server, inputs, tmp_path):
    """--max_dollars applies (it is not refused for a judge "without price") and a judge at $0 never reaches it."""
    _, free = specs_of(server)
    result = run(inputs, tmp_path, [free], max_dollars=0.000001, judge_prices={free: "0:0"})
    assert server.chat_calls > 0 and next(iter(result["usage_this_run"].values()))["dollars"] == 0.0


def test_a_dollar_budget_still_stops_the_paid_judge_of_a_panel_with_a_free_one(server, inputs, tmp_path):
    paid, free = specs_of(server)
    with pytest.raises(SystemExit, match=r"stopped: dollar budget of \$0\.01 reached"):
        run(inputs, tmp_path, [paid, free], max_dollars=0.01, judge_prices={paid: "10:30", free: "0:0"})


def test_a_free_prompt_with_a_paid_completion_is_counted_at_both(server, inputs, tmp_path):
    _, judge = specs_of(server)
    use = next(iter(run(inputs, tmp_path, [judge], judge_prices={judge: "0:2"})["usage_this_run"].values()))
    assert use["completion_tokens"] > 0 and use["dollars"] == pytest.approx(cost(use, 0, 2))


def test_zero_for_both_single_prices_prices_every_judge_at_zero(server, inputs, tmp_path):
    _, free = specs_of(server)
    result = run(inputs, tmp_path, [free], max_dollars=5, dollars_per_1k_prompt=0, dollars_per_1k_completion=0)
    assert [u["dollars"] for u in result["usage_this_run"].values()] == [0.0]


@pytest.mark.parametrize("value", ["-1:0", "0:-0.5"])
def test_a_negative_price_is_refused_naming_the_judge_and_the_fix(server, inputs, tmp_path, value):
    _, free = specs_of(server)
    with pytest.raises(UserError, match=rf"^--judge_prices 'openai:gpt-3\.5-turbo@{server.base_url}': '{value}' "
                                        r"is not two prices of 0 or more; write two prices of 0 or more \(0 for a "
                                        r"free judge\), USD per 1K prompt then completion tokens, e\.g\. "
                                        r"--judge_prices '\{\"openai:gpt-3\.5-turbo@"):
        run(inputs, tmp_path, [free], judge_prices={free: value})
    assert server.chat_calls == 0 and not (tmp_path / "out").exists()


def test_a_negative_single_price_is_refused(server, inputs, tmp_path):
    _, free = specs_of(server)
    with pytest.raises(UserError, match=r"--dollars_per_1k_completion must be a number of 0 or more"):
        evaluate(str(inputs[0]), {"ours": str(inputs[1])}, judges=[free], output_dir=str(tmp_path / "out"),
                 resamples=10, controls=[], dollars_per_1k_prompt=0, dollars_per_1k_completion=-1)
    assert server.chat_calls == 0


def test_a_free_judge_on_the_command_line(server, inputs, tmp_path):
    from tests.conftest import run_cli
    from tests.openai_server import API_KEY

    human, ours = inputs
    proc = run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                   '--judges=["openai:m"]', '--judge_prices={"openai:m": "0:0"}', "--max_dollars=1",
                   "--controls=[]", "--resamples=10", f"--output_dir={tmp_path / 'out'}", cwd=tmp_path,
                   env={"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": server.base_url})
    assert proc.returncode == 0, proc.stderr[-2000:]
    usage = (tmp_path / "out" / "report.md").read_text().split("## Judge usage", 1)[1]
    assert next(line for line in usage.splitlines() if line.startswith("| m |")).endswith("| 0.00 |")
