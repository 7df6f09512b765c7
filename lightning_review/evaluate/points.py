"""Review points without a judge model: numbered or bulleted items when the review has them, sentences otherwise
(the offline judge's extraction step; the chat judge asks the model instead)."""

from __future__ import annotations

import re

ITEM = re.compile(r"^\s*(?:[-*\u2022]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+", re.MULTILINE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
MIN_CHARS = 25  # shorter fragments ("Minor:", "Typos.") are headings or noise, not points


def split_points(review: str) -> list[str]:
    """The review's points, in order, each stripped; items if there are at least two, sentences otherwise."""
    text = review.strip()
    starts = [m.start() for m in ITEM.finditer(text)]
    if len(starts) >= 2:
        pieces = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
        pieces = [ITEM.sub("", p, count=1) for p in pieces]
    else:
        pieces = [s for paragraph in re.split(r"\n\s*\n", text) for s in SENTENCE_END.split(paragraph)]
    points = [" ".join(p.split()) for p in pieces]
    return [p for p in points if len(p) >= MIN_CHARS]
