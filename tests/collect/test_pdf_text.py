from __future__ import annotations

import importlib.util
import re

import pytest

from lightning_review.collect.pdf_text import PdfTextError, pdf_to_text

from .pdfs import HEADER, make_paper_pdf

BACKENDS = ["pypdf", pytest.param("pymupdf", marks=pytest.mark.skipif(
    importlib.util.find_spec("pymupdf") is None, reason="pymupdf (AGPL, optional) not installed"))]


@pytest.fixture(scope="module")
def three_page_pdf(tmp_path_factory) -> bytes:
    return make_paper_pdf(tmp_path_factory.mktemp("pdf") / "paper.pdf", repeat=3).read_bytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_columns_in_reading_order_headings_kept_references_removed(three_page_pdf, backend):
    text = pdf_to_text(three_page_pdf, backend=backend)
    flat = re.sub(r"\s+", " ", text)
    # the left column's end runs on into the right column's start, across the gutter and across pages
    order = [f"## {n} {h} (part {p})" for p in (1, 2, 3) for n, h in
             [(1, "Introduction"), (2, "Related Work"), (3, "Method"), (4, "Experiments"), (5, "Conclusion")]]
    positions = [text.find(h) for h in order]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), positions
    assert text.startswith("Reviewing Papers with Long-Context Language Models\n\n## 1 Introduction (part 1)")
    assert ("Peer review decides which research gets published, yet reviewers are scarce and their time is short. "
            "We ask whether a language model") in flat
    assert "position interpolation and train" in flat and "inter-" not in flat  # the hyphen at the line end
    assert HEADER not in text and not re.search(r"^\d+$", text, re.M)  # running header, page numbers
    assert "References" not in text and "Chen, S., Wong" not in text
    assert text.rstrip().endswith("agreement between the judges on the same pairs of points.")  # the appendix stays
    assert "## A Additional Results" in text
    kept = pdf_to_text(three_page_pdf, backend=backend, keep_references=True)
    assert "## References" in kept and "Extending context window of large language models" in kept


def test_not_a_pdf_is_named():
    with pytest.raises(PdfTextError, match="paper7.pdf: not a readable PDF"):
        pdf_to_text(b"<html>Forbidden</html>", "paper7.pdf")


def test_one_page_pdf_loses_its_page_number_and_venue_header(paper_pdfs):
    text = pdf_to_text(paper_pdfs["paper1"])  # nothing repeats across pages here: known forms only
    assert HEADER not in text and not re.search(r"^\d+$", text, re.M)
