"""Perplexity at several context lengths: windows as LongLoRA's protocol cuts them, the score equal to transformers'
own loss, and the command's outputs."""

import json
import math
import re

import pytest
import torch

from lightning_review.evaluate.perplexity import perplexity_at_lengths, window_nll
from lightning_review.evaluate.perplexity_command import parse_lengths
from lightning_review.errors import UserError
from tests.conftest import run_cli, write_jsonl


def test_window_score_equals_transformers_loss(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    window = list(range(5, 69))
    with torch.no_grad():
        expected = model(torch.tensor([window]), labels=torch.tensor([window])).loss.item() * (len(window) - 1)
    assert window_nll(model, window, chunk_tokens=16) == pytest.approx(expected, rel=1e-5)
    result = perplexity_at_lengths(model, [window + window], [64])[0]
    assert (result.windows, result.tokens_scored) == (2, 126)
    assert result.perplexity == pytest.approx(math.exp(result.mean_nll))


def test_lengths_are_parsed_and_bad_ones_refused():
    assert parse_lengths("4096,2048, 8192") == [2048, 4096, 8192]
    assert parse_lengths([32, 16]) == [16, 32]
    for bad in ("2k,4k", "1", ""):
        with pytest.raises(UserError, match="--lengths"):
            parse_lengths(bad)
    assert parse_lengths("2048,16777216") == [2048, 2**24]  # the limit itself


@pytest.mark.parametrize("lengths", ["2048,16777217", "99999999999999", [4096, 2**25]])
def test_lengths_beyond_ropes_float32_positions_are_refused(lengths):
    # they were accepted: a window that long would give neighbouring tokens one rotation, silently
    with pytest.raises(UserError, match=re.escape(f"--lengths {lengths!r}: give lengths of at most 16,777,216 (2**24) "
                                                  "tokens: the model's RoPE takes positions as float32")):
        parse_lengths(lengths)


def test_perplexity_command_writes_json_table_and_plot(tmp_path, tiny_llama_dir):
    from lightning_review.demo import demo_records

    papers = write_jsonl(tmp_path / "held_out.jsonl",
                         [{"id": r["id"], "paper": r["paper"]} for r in demo_records(4, seed=7)])
    result = run_cli("perplexity", "--data_file", str(papers), "--checkpoint_dir", str(tiny_llama_dir),
                     "--lengths", "32,64,100000", "--join", "true", "--model_max_length", "512",
                     "--output_dir", str(tmp_path / "ppl"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "ppl" / "perplexity.json").read_text())
    by_length = {r["length"]: r for r in summary["results"]}
    assert by_length[32]["windows"] > by_length[64]["windows"] > 0
    assert by_length[100000]["windows"] == 0 and by_length[100000]["perplexity"] is None
    assert summary["joined"] is True and summary["documents"] == 4
    assert summary["rope_parameters"]["factor"] == 2.0  # 512 / the tiny model's 256 positions: interpolation x2
    assert "| 64 |" in (tmp_path / "ppl" / "perplexity.md").read_text()
    assert (tmp_path / "ppl" / "perplexity.png").stat().st_size > 0


def test_perplexity_refuses_an_output_over_its_data(tmp_path, tiny_llama_dir):
    papers = write_jsonl(tmp_path / "perplexity.json", [{"id": "a", "paper": "x " * 50}])
    result = run_cli("perplexity", "--data_file", str(papers), "--checkpoint_dir", str(tiny_llama_dir),
                     "--output_dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode != 0
    assert "output_dir" in result.stderr and "Traceback" not in result.stderr


def test_a_paper_with_several_reviews_is_one_document(tmp_path):
    """Scored once: the same paper three times in a joined stream would let the model copy it and flatter the long
    windows."""
    from lightning_review.evaluate.perplexity_command import held_out_documents

    rows = [{"id": f"p{i}", "title": "t", "paper": f"paper {i} " * 40,
             "reviews": [{"text": f"review {j} of paper {i}, long enough to count", "rating": 5} for j in range(3)]}
            for i in range(2)]
    documents = held_out_documents(write_jsonl(tmp_path / "papers.jsonl", rows))
    assert [paper_id for paper_id, _ in documents] == ["p0", "p1"]


def test_long_documents_without_reviews_are_held_out_documents(tmp_path):
    """The text task's data (``text`` lines, no reviews) is what a context extension is scored on."""
    from lightning_review.evaluate.perplexity_command import held_out_documents

    rows = [{"id": "a", "text": "first document " * 30}, {"id": "b", "text": "second document " * 30}]
    documents = held_out_documents(write_jsonl(tmp_path / "docs.jsonl", rows))
    assert documents == [("a", rows[0]["text"]), ("b", rows[1]["text"])]
