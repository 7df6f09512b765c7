"""result.json carries what the run's judges cost, each and in total (``cost_this_run``), the very numbers of
report.md's usage table: a script reading the results need not re-add them, nor parse the report. A judge without a
price is null (so is the total), and the file says why; no key reaches the file."""

import json

import pytest

from tests.evaluate.test_judge_prices import cost, run, specs_of
from tests.openai_server import API_KEY, FakeOpenAI


def written(tmp_path) -> tuple[dict, str]:
    out = tmp_path / "out"
    return json.loads((out / "result.json").read_text()), (out / "report.md").read_text()


def report_total(report: str) -> str:
    return next(line for line in report.splitlines() if line.startswith("| **total** |")).rsplit("|", 2)[1].strip()


def test_each_judges_dollars_and_the_total_are_in_result_json(server, inputs, tmp_path):
    pricey, cheap = specs_of(server)
    run(inputs, tmp_path, [pricey, cheap], judge_prices={pricey: "10:30", cheap: "0:0"})
    result, report = written(tmp_path)
    (pricey_name, pricey_use), (cheap_name, cheap_use) = result["usage_this_run"].items()
    expected = cost(pricey_use, 10, 30)
    assert result["cost_this_run"] == {"dollars": {pricey_name: pytest.approx(expected), cheap_name: 0.0},
                                       "total_dollars": pytest.approx(expected), "unpriced": []}
    assert report_total(report) == f"{result['cost_this_run']['total_dollars']:.2f}"  # the report's number


def test_a_judge_without_a_price_is_null_and_the_file_says_why(server, inputs, tmp_path):
    pricey, cheap = specs_of(server)
    run(inputs, tmp_path, [pricey, cheap], judge_prices={pricey: "10:30"})
    result, report = written(tmp_path)
    (pricey_name, pricey_use), (cheap_name, _) = result["usage_this_run"].items()
    summary = result["cost_this_run"]
    assert summary["dollars"] == {pricey_name: pytest.approx(cost(pricey_use, 10, 30)), cheap_name: None}
    assert summary["total_dollars"] is None and summary["unpriced"] == [cheap_name]
    assert summary["note"].startswith(f"null: no price was given for {cheap_name}; add it to --judge_prices")
    assert report_total(report) == "n/a (no prices given)"


def test_no_chat_judge_costs_nothing(inputs, tmp_path, embedding_judge):
    run(inputs, tmp_path, ["embedding"])
    assert written(tmp_path)[0]["cost_this_run"] == {"dollars": {}, "total_dollars": 0.0, "unpriced": []}


class KeyInPathServer(FakeOpenAI):
    """A proxy that wants the key in its address (``/v1/<key>/chat/completions``): answers as the fake server."""

    def handle(self, method, path, headers, body):
        return super().handle(method, path.replace(f"/{API_KEY}", ""), headers, body)


def test_no_key_reaches_result_json(inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    with KeyInPathServer() as proxy:
        judge = f"openai:gpt-4-1106-preview@{proxy.base_url}/{API_KEY}"
        run(inputs, tmp_path, [judge], judge_prices={judge: "1:2"})
        assert proxy.chat_calls > 0
    text = (tmp_path / "out" / "result.json").read_text()
    assert API_KEY not in text and API_KEY not in (tmp_path / "out" / "report.md").read_text()
    names = list(json.loads(text)["cost_this_run"]["dollars"])
    assert names == [f"gpt-4-1106-preview@{proxy.base_url}/<OPENAI_API_KEY>"]
