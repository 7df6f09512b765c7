"""perplexity with no length that had a window: the JSON and the table are written, the plot is skipped with a line
that says why (no crash on an empty log-scaled plot), and a plot left by an earlier run does not stay beside them."""

import json

from lightning_review.evaluate.perplexity_command import perplexity
from tests.conftest import write_jsonl


def test_no_window_at_any_length_skips_the_plot_and_says_so(tmp_path, tiny_llama_dir, capsys):
    papers = write_jsonl(tmp_path / "short.jsonl", [{"id": "a", "paper": "A short paper about graphs."},
                                                     {"id": "b", "paper": "Another one."}])
    out = tmp_path / "ppl"
    out.mkdir()
    (out / "perplexity.png").write_bytes(b"an earlier run's plot")
    perplexity(str(papers), lengths="100000", checkpoint_dir=str(tiny_llama_dir), join=True, output_dir=str(out),
               device="cpu", dtype="float32")
    summary = json.loads((out / "perplexity.json").read_text())
    assert summary["results"][0]["windows"] == 0 and summary["results"][0]["perplexity"] is None
    assert "n/a (no window)" in (out / "perplexity.md").read_text()
    assert not (out / "perplexity.png").exists()
    printed = capsys.readouterr().out
    assert "no plot: no length had a window to score (lengths 100,000; the joined stream is " in printed
    assert "perplexity.png is not written; give --lengths of at most " in printed
