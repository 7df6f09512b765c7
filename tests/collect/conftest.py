from __future__ import annotations

import pytest

from .openreview_server import VENUE, OpenReviewServer, v2_paper, v2_review
from .pdfs import make_paper_pdf

TITLES = ["Reviewing Papers with Long Contexts", "Sparse Attention for Documents", "Packing without Leaks",
          "A Paper Nobody Reviewed", "A Withdrawn Paper", "A Desk Rejected Paper"]


@pytest.fixture(scope="session")
def paper_pdfs(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("pdfs")
    return {f"paper{i + 1}": make_paper_pdf(folder / f"paper{i + 1}.pdf", title=t).read_bytes()
            for i, t in enumerate(TITLES)}


def venue_notes() -> list[dict]:
    def reviews(n, count=2):
        return [v2_review(VENUE, n, r, rating=f"{6 + k}: marginally above the acceptance threshold",
                          confidence=f"{3 + k}: fairly confident",
                          summary=f"Paper {n} proposes a way to review papers with long-context models (reviewer {r}).",
                          strengths=f"The idea of paper {n} is clear and the experiments are careful.",
                          weaknesses=f"Paper {n} evaluates on one venue only.")
                for k, r in enumerate(["aBcD", "eFgH", "iJkL"][:count])]

    return [v2_paper(VENUE, 1, TITLES[0], reviews=reviews(1, 3), decision="Accept (poster)"),
            v2_paper(VENUE, 2, TITLES[1], reviews=reviews(2), decision="Reject"),
            v2_paper(VENUE, 3, TITLES[2], reviews=reviews(3)),
            v2_paper(VENUE, 4, TITLES[3], reviews=[]),
            v2_paper(VENUE, 5, TITLES[4], status="withdrawn", reviews=reviews(5)),
            v2_paper(VENUE, 6, TITLES[5], status="desk_rejected")]


@pytest.fixture
def server(paper_pdfs):
    s = OpenReviewServer(venue_notes(), paper_pdfs)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    monkeypatch.delenv("OPENREVIEW_USERNAME", raising=False)
    monkeypatch.delenv("OPENREVIEW_PASSWORD", raising=False)
