"""A folder of PDFs writes the same fields as a venue (the README's collect section lists them), null where a
folder cannot know them: before, its lines had no decision, venue, status, keywords or url at all."""

from __future__ import annotations

import json
import re

from lightning_review.collect.command import collect
from lightning_review.data.readers import read_records
from tests.conftest import ROOT


def readme_output_fields() -> list[str]:
    """The top-level fields the README's collect section says an output line holds (its ``{"id", ...}``)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Collect paper-review pairs"):]
    listing = re.search(r'- Output: the paper-with-reviews format above \(`(\{.*?\})` a line\)', section, re.S)
    assert listing, "the README's collect section no longer lists the output's fields"
    without_reviews = re.sub(r"\[\{.*?\}\]", "", " ".join(listing.group(1).split()))
    return re.findall(r'"(\w+)"', without_reviews)


def test_a_folder_line_has_every_field_the_readme_lists_null_where_unknown(paper_pdfs, tmp_path):
    pdf_dir = tmp_path / "pdfs"
    pdf_dir.mkdir()
    (pdf_dir / "paper1.pdf").write_bytes(paper_pdfs["paper1"])
    reviews = tmp_path / "reviews.jsonl"
    reviews.write_text(json.dumps({"id": "paper1", "text": "The method is sound; one venue only.", "rating": 6})
                       + "\n")
    out = tmp_path / "pairs.jsonl"
    collect(output_file=str(out), pdf_dir=str(pdf_dir), reviews_file=str(reviews), progress=False)
    [line] = [json.loads(x) for x in out.read_text().splitlines()]

    assert list(line) == ["id", "title", "abstract", "paper", "reviews", "decision", "venue", "status", "keywords",
                          "source", "url"]  # the venue's fields, in its order
    assert {k: line[k] for k in ("abstract", "decision", "venue", "status", "keywords", "url")} == dict.fromkeys(
        ("abstract", "decision", "venue", "status", "keywords", "url"))
    assert line["source"] == f"folder {pdf_dir}" and line["id"] == "paper1"
    assert set(readme_output_fields()) <= set(line), readme_output_fields()
    report = read_records(out)
    assert [(r.paper_id, r.rating) for r in report.records] == [("paper1", 6)]
    assert report.warnings == []  # the null fields are the format's metadata: no 'fields not read' warning
