"""The cost estimate: the seed's figure exactly (as the README shows it), the price table, export -> validate -> cost
on a fixture file, and numbers that would make a meaningless bill refused, naming their flag."""

import json

import pytest

from lightning_review.errors import UserError
from lightning_review.openai_ft.commands import cost
from lightning_review.openai_ft.cost import CostEstimate, price_for
from tests.conftest import ROOT, run_cli, write_jsonl


def test_the_seed_figure_exactly(tmp_path):
    proc = run_cli("cost", "--tokens=118689950", "--epochs=2", "--price_per_1k=0.008", "--exchange_rate=7.18",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["118,689,950 tokens x 2 epochs x $0.008 per 1K tokens", "1,899.04 USD",
                                        "13,635.1 CNY (at 7.18 CNY/USD)"]
    readme = (ROOT / "README.md").read_text().splitlines()  # the README shows this output, joined with " / "
    assert "#   " + " / ".join(proc.stdout.splitlines()) in [line.strip() for line in readme]
    estimate = CostEstimate(118_689_950, 2, 0.008, 7.18)
    assert estimate.usd == pytest.approx(1899.0392) and estimate.local == pytest.approx(13635.101456)


def test_prices_come_from_one_table_and_can_be_overridden(tmp_path):
    assert price_for("gpt-3.5-turbo-0125") == 0.008  # dated versions match their family
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"gpt-3.5-turbo": 0.01, "my-model": 0.5}))
    assert price_for("gpt-3.5-turbo-1106", table) == 0.01 and price_for("my-model", table) == 0.5
    with pytest.raises(ValueError, match="no training price for model 'llama'"):
        price_for("llama")


def test_export_validate_cost_on_fixture_data(tmp_path):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [
        {"id": f"p{i}", "paper": "We propose a method. " * (50 + 40 * i), "review": f"Review {i}. Good, the baselines are weak."}
        for i in range(10)])
    chat = tmp_path / "chat.jsonl"
    proc = run_cli("openai", "export", f"--data_file={pairs}", f"--output_file={chat}", "--sample=4", "--seed=3",
                   "--max_tokens=1000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 examples; papers truncated to fit 1000 tokens: " in proc.stdout
    proc = run_cli("openai", "validate", f"--file={chat}", "--max_tokens=1000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["examples"] == 4 and summary["over_limit"] == 0 and summary["tokens"]["max"] <= 1000
    proc = run_cli("cost", f"--file={chat}", "--epochs=3", "--exchange_rate=7.18", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    usd = summary["billed_tokens_per_epoch"] * 3 / 1000 * 0.008
    assert f"{summary['billed_tokens_per_epoch']:,} tokens x 3 epochs" in proc.stdout
    assert f"{usd:,.2f} USD" in proc.stdout
    # The same file before export (paper->review records) is costed with the same system prompt, untruncated.
    proc = run_cli("cost", f"--file={pairs}", cwd=tmp_path)
    assert proc.returncode == 0 and "tokens x 2 epochs" in proc.stdout


def test_validate_lists_problems_with_lines_and_fails(tmp_path):
    chat = write_jsonl(tmp_path / "chat.jsonl", [
        {"messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "r"}]},
        {"messages": [{"role": "user", "content": "p"}]},
    ])
    proc = run_cli("openai", "validate", f"--file={chat}", cwd=tmp_path)
    assert proc.returncode != 0 and f"{chat}:2: no assistant message" in proc.stderr


def test_validate_refuses_a_file_without_examples_as_cost_and_upload_do(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    proc = run_cli("openai", "validate", f"--file={empty}", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (f"error: {empty}: no examples; a fine-tuning file needs examples "
                                                    "(make it with `openai export`)")


def test_cost_needs_a_file_or_a_count(tmp_path):
    proc = run_cli("cost", "--epochs=2", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith("error: cost needs either --file")


def test_a_bill_that_means_nothing_is_refused_naming_each_flag_on_one_line(tmp_path):
    proc = run_cli("cost", "--tokens=-5", "--epochs=0", "--price_per_1k=-0.008", "--exchange_rate=-7.18",
                   cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""  # no bill printed
    assert proc.stderr == (
        "error: --tokens must be a whole number of tokens per epoch, 1 or more (got -5); "
        "--epochs must be a whole number of epochs, 1 or more (got 0); "
        "--price_per_1k must be a number above 0, in USD per 1K training tokens (got -0.008); "
        "--exchange_rate must be a number above 0, in CNY per USD (got -7.18)\n")


@pytest.mark.parametrize("flags, problem", [
    ({"tokens": -1}, "--tokens must be a whole number of tokens per epoch, 1 or more (got -1)"),
    ({"tokens": 0}, "--tokens must be a whole number of tokens per epoch, 1 or more (got 0)"),
    ({"epochs": 0}, "--epochs must be a whole number of epochs, 1 or more (got 0)"),
    ({"epochs": -3}, "--epochs must be a whole number of epochs, 1 or more (got -3)"),
    ({"price_per_1k": -0.008}, "--price_per_1k must be a number above 0, in USD per 1K training tokens (got -0.008)"),
    ({"price_per_1k": 0.0}, "--price_per_1k must be a number above 0"),
    ({"exchange_rate": 0.0, "currency": "EUR"}, "--exchange_rate must be a number above 0, in EUR per USD (got 0.0)"),
    ({"exchange_rate": -7.18}, "--exchange_rate must be a number above 0"),
    ({"price_per_1k": float("nan")}, "--price_per_1k must be a number above 0"),
    ({"exchange_rate": float("inf")}, "--exchange_rate must be a number above 0"),
])
def test_each_bad_number_is_refused_naming_its_flag(flags, problem, capsys):
    with pytest.raises(UserError) as caught:
        cost(**{"tokens": 1000, "epochs": 2, "price_per_1k": 0.008, **flags})
    assert str(caught.value).startswith(problem) and ";" not in str(caught.value)  # only the bad flag is named
    assert capsys.readouterr().out == ""


def test_the_smallest_real_bill_is_accepted(capsys):
    assert cost(tokens=1, epochs=1, price_per_1k=0.008).usd == pytest.approx(0.000008)
    assert "1 tokens x 1 epochs" in capsys.readouterr().out


def test_a_prices_file_with_a_bad_price_or_bad_json_names_the_file(tmp_path):
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"gpt-3.5-turbo": -0.008, "my-model": "cheap"}))
    with pytest.raises(UserError, match=rf"{table}: 'gpt-3.5-turbo' must be a number above 0.*\(got -0.008\); "
                                        rf"{table}: 'my-model' must be a number above 0.*\(got 'cheap'\)"):
        price_for("gpt-3.5-turbo", table)
    table.write_text("{not json")
    with pytest.raises(UserError, match=rf"{table}: not a JSON file of prices"):
        price_for("gpt-3.5-turbo", table)
    table.write_text("[0.008]")
    with pytest.raises(UserError, match=rf"{table}: must hold a JSON object"):
        price_for("gpt-3.5-turbo", table)


def test_a_file_without_examples_or_a_zero_limit_is_refused(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(UserError, match=rf"{empty}: no examples to cost"):
        cost(file=str(empty))
    chat = write_jsonl(tmp_path / "chat.jsonl", [{"messages": [{"role": "user", "content": "p"},
                                                               {"role": "assistant", "content": "r"}]}])
    with pytest.raises(UserError, match=r"--max_tokens must be a whole number of tokens per example, 1 or more"):
        cost(file=str(chat), max_tokens=0)


def test_a_file_with_some_ratings_names_costs_own_rating_line_flag(tmp_path):
    """Records where only some have a rating need the rating-line choice, as export does; cost had no such flag and
    its refusal named fit's data.rating_line."""
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [
        {"id": "a", "paper": "We study graphs. " * 8, "review": "Clear writing, weak baselines.", "rating": 3},
        {"id": "b", "paper": "We study molecules. " * 8, "review": "Missing ablations; a good idea."}])
    proc = run_cli("cost", f"--file={pairs}", cwd=tmp_path)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {pairs}: 1 of 2 records have no rating") and "set --rating_line false" in line
    assert "data." not in line
    proc = run_cli("cost", f"--file={pairs}", "--rating_line=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tokens x 2 epochs" in proc.stdout
