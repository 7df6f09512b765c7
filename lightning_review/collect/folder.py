"""Papers that are not on OpenReview: a folder of PDFs (``<id>.pdf``) and a JSONL reviews file, either a paper a
line (``{"id", "title"?, "reviews": [{"text", "rating"?, "confidence"?, "reviewer"?}]}``) or a review a line
(``{"id", "text" or "review", "rating"?, "confidence"?, "reviewer"?}``; several lines may share an id)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..data.records import RecordError, check_rating, iter_json_objects
from .split import required_id


@dataclass
class FolderPaper:
    id: str
    pdf: Path | None
    title: str | None = None
    reviews: list[dict] = field(default_factory=list)


def _review(obj: dict, where: str) -> dict:
    text = obj.get("text", obj.get("review"))
    if not isinstance(text, str) or not text.strip():
        raise RecordError(f"{where}: a review needs its text in 'text' (or 'review')", "missing_review")
    for name in ("rating", "confidence"):
        check_rating(obj.get(name), where, name)
    return {"reviewer": obj.get("reviewer"), "text": text.strip(), "rating": obj.get("rating"),
            "confidence": obj.get("confidence")}


def read_folder(pdf_dir: str | Path, reviews_file: str | Path) -> tuple[list[FolderPaper], list[str]]:
    """The papers of the reviews file in id order (``pdf`` None where ``<id>.pdf`` is missing), and the ids of
    PDFs that have no reviews. A bad line stops the read naming file:line."""
    pdf_dir = Path(pdf_dir)
    if not pdf_dir.is_dir():
        raise FileNotFoundError(f"{pdf_dir}: no such folder of PDFs")
    papers: dict[str, FolderPaper] = {}
    for where, obj in iter_json_objects(reviews_file):
        key = "id" if "id" in obj or "paper_id" not in obj else "paper_id"
        paper_id = required_id(obj, where, "each line needs the 'id' of its paper (the PDF's name without .pdf); "
                               "add it or remove the line", f"field {key!r}", key)
        paper = papers.setdefault(paper_id, FolderPaper(paper_id, None))
        paper.title = paper.title or obj.get("title")
        if "reviews" in obj and not isinstance(obj["reviews"], list):
            raise RecordError(f"{where}: 'reviews' must be a list of reviews ({{\"text\", \"rating\"?, ...}}), got "
                              f"{type(obj['reviews']).__name__}", "bad_reviews")
        if isinstance(obj.get("reviews"), list):
            paper.reviews.extend(_review(r if isinstance(r, dict) else {}, f"{where} review {i}")
                                 for i, r in enumerate(obj["reviews"]))
        else:
            paper.reviews.append(_review(obj, where))
    pdfs = {p.stem: p for p in pdf_dir.glob("*.pdf")} | {p.stem: p for p in pdf_dir.glob("*.PDF")}
    for paper in papers.values():
        paper.pdf = pdfs.get(paper.id)
    return [papers[k] for k in sorted(papers)], sorted(set(pdfs) - set(papers))
