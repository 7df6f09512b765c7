"""The collected file goes into the project's own commands as it is."""

from __future__ import annotations

import json

from lightning_review.collect.command import collect
from lightning_review.data.readers import read_records
from lightning_review.data.records import read_jsonl
from lightning_review.evaluate.command import load_input
from lightning_review.openai_ft.commands import export

from .openreview_server import VENUE


def test_prepare_fit_openai_export_and_evaluate_read_the_output(server, tmp_path):
    out, pairs = tmp_path / "pairs.jsonl", tmp_path / "flat.jsonl"
    summary = collect(output_file=str(out), venue=VENUE, baseurl=server.url, requests_per_second=0,
                      progress=False, pairs_file=str(pairs), split={"train": 0.67, "test": 0.33}, seed=1)
    by_review = read_records(out).records  # prepare and fit (format detected: paper_reviews)
    assert len(by_review) == 7 and summary["pairs_file"]["pairs"] == 7
    flat = list(read_jsonl(pairs))  # the one-pair-a-line reader of openai export
    assert [(r.id, r.paper_id, r.review, r.rating) for r in flat] == [
        (r.id, r.paper_id, r.review, r.rating) for r in by_review]
    counts = export(data_file=str(pairs), output_file=str(tmp_path / "chat.jsonl"))
    assert counts["examples"] == 7
    chat = [json.loads(line) for line in (tmp_path / "chat.jsonl").read_text().splitlines()]
    assert chat[0]["messages"][2]["content"].startswith("Summary: Paper 1 proposes")
    test_file = summary["split"]["test"]["file"]
    (paper_id,) = [json.loads(line)["id"] for line in open(test_file)]
    system = tmp_path / "system.jsonl"
    system.write_text(json.dumps({"id": paper_id, "review": "A generated review of the paper."}) + "\n")
    loaded = load_input(human_file=test_file, systems={"ours": str(system)}, excerpt_control=False)
    human = [json.loads(line) for line in open(test_file)][0]["reviews"]
    assert loaded.papers == {paper_id: [r["text"] for r in human]}
    assert loaded.systems == {"ours": {paper_id: "A generated review of the paper."}}
