"""Papers parsed by Docling (``DoclingDocument`` JSON, one file a paper) plus their OpenReview reviews (one JSON a
paper: title, abstract, id, reviews with ``comments`` and ``RECOMMENDATION``) -> the project's paper-with-reviews
JSONL, so real long papers can be the context-extension text and real reviews the fine-tuning pairs.

Used for issue 17's long-text experiment with the NeurIPS 2025 crawl of a public repository (djroytburg/10718peerread,
``output/neurips_2025_full/{parsed_pdfs,reviews}``), whose PDFs Docling already turned into reading-order text.
The text is the body in Docling's reading order (section headings, paragraphs, list items, formulas as Docling wrote
them) up to the references; page headers/footers and footnotes are left out.

    python benchmarks/docling_papers.py --parsed_dir parsed_pdfs --reviews_dir reviews --output_file neurips.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

BODY_LABELS = {"text", "section_header", "list_item", "formula", "caption", "title", "paragraph"}
REFERENCES = re.compile(r"^\s*(?:[0-9A-Z]+\.?\s+)?(references|bibliography)\s*$", re.IGNORECASE)


def paper_text(document: dict) -> str:
    """The paper's body text in reading order, stopping at its references heading."""
    lines = []
    for item in document.get("texts", []):
        if item.get("label") not in BODY_LABELS or item.get("content_layer", "body") != "body":
            continue
        text = " ".join(str(item.get("text", "")).split())
        if not text:
            continue
        if item["label"] == "section_header" and REFERENCES.match(text):
            break
        lines.append(f"\n## {text}\n" if item["label"] == "section_header" else text)
    return "\n".join(lines).strip()


def review_record(review: dict, index: int) -> dict | None:
    if review.get("IS_META_REVIEW") or not str(review.get("comments", "")).strip():
        return None
    return {"reviewer": f"reviewer-{index + 1}", "text": review["comments"].strip(),
            "rating": review.get("RECOMMENDATION"), "confidence": review.get("REVIEWER_CONFIDENCE")}


def convert(parsed_dir: Path, reviews_dir: Path, output_file: Path, limit: int | None, min_chars: int) -> dict:
    counts = {"written": 0, "no_reviews_file": 0, "too_short": 0, "no_reviews": 0}
    with output_file.open("w", encoding="utf-8") as out:
        for parsed in sorted(parsed_dir.glob("*.pdf.json")):
            if limit is not None and counts["written"] >= limit:
                break
            paper_id = parsed.name.removesuffix(".pdf.json")
            meta_file = reviews_dir / f"{paper_id}.json"
            if not meta_file.exists():
                counts["no_reviews_file"] += 1
                continue
            text = paper_text(json.loads(parsed.read_text(encoding="utf-8")))
            if len(text) < min_chars:
                counts["too_short"] += 1
                continue
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            reviews = [kept for i, raw in enumerate(meta.get("reviews", [])) if (kept := review_record(raw, i))]
            if not reviews:
                counts["no_reviews"] += 1
                continue
            out.write(json.dumps({"id": f"neurips2025-{paper_id}", "title": meta.get("title", ""),
                                  "abstract": meta.get("abstract", ""), "paper": text, "reviews": reviews,
                                  "source": "NeurIPS 2025 via djroytburg/10718peerread (Docling-parsed PDF)"},
                                 ensure_ascii=False) + "\n")
            counts["written"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parsed_dir", type=Path, required=True)
    parser.add_argument("--reviews_dir", type=Path, required=True)
    parser.add_argument("--output_file", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--min_chars", type=int, default=5_000, help="skip parses with less body text than this")
    opts = parser.parse_args()
    print(json.dumps(convert(opts.parsed_dir, opts.reviews_dir, opts.output_file, opts.limit, opts.min_chars)))


if __name__ == "__main__":
    main()
