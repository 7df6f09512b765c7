"""The cost estimate: the seed's figure exactly, the price table, and export -> validate -> cost on a fixture file."""

import json

import pytest

from lightning_review.openai_ft.cost import CostEstimate, price_for
from tests.conftest import run_cli, write_jsonl


def test_the_seed_figure_exactly(tmp_path):
    proc = run_cli("cost", "--tokens=118689950", "--epochs=2", "--price_per_1k=0.008", "--exchange_rate=7.18",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1,899.04 USD" in proc.stdout and "13,635.1 CNY" in proc.stdout
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
        {"id": f"p{i}", "paper": "We propose a method. " * (50 + 40 * i), "review": f"Review {i}. Good."}
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


def test_cost_needs_a_file_or_a_count(tmp_path):
    proc = run_cli("cost", "--epochs=2", cwd=tmp_path)
    assert proc.returncode != 0 and "either --file" in proc.stderr
