"""One review note of OpenReview as the project's review: the form's text fields joined into one text in a stated
order, the rating and confidence as numbers, the reviewer's anonymous name.

Order: the fields of REVIEW_FIELD_ORDER that the form has, in that order (summary first, then the body, strengths,
weaknesses, questions, limitations, the review's summary, then the scored aspects), then any other text field of
the form in alphabetical order. Each field is given under its name (``Strengths:``); a form with one text field
(the ``review`` of API v1 venues) is that text alone. The rating, confidence and administrative fields (codes of
conduct, ethics flags, certifications) are not part of the text.
"""

from __future__ import annotations

import re

REVIEW_FIELD_ORDER = (
    "summary", "summary_of_the_paper", "paper_summary", "main_review", "review", "comment",
    "strengths_and_weaknesses", "strength_and_weaknesses", "strengths", "weaknesses",
    "clarity,_quality,_novelty_and_reproducibility", "clarity_quality_novelty_and_reproducibility", "questions",
    "limitations", "summary_of_the_review", "soundness", "presentation", "contribution", "correctness",
    "technical_novelty_and_significance", "empirical_novelty_and_significance")
RATING_FIELDS = ("rating", "recommendation", "overall_recommendation", "score", "overall_score")
CONFIDENCE_FIELDS = ("confidence",)
NOT_TEXT = re.compile(r"^(title|code_of_conduct.*|.*ethic.*|first_time_reviewer|acknowledg.*|.*certif.*|"
                      r".*agreement.*|.*consent.*|.*responsible_reviewing.*|.*review_assessment.*|"
                      r".*anonymity.*|.*checkbox.*)$")


def value(field):
    """A content field's value: API v2 wraps each in ``{"value": ...}``, API v1 does not."""
    return field.get("value") if isinstance(field, dict) and set(field) <= {"value", "readers"} else field


def score(field) -> float | int | None:
    """``"8: accept, good paper"``, ``8`` or ``{"value": 8}`` -> 8; None when there is no leading number."""
    raw = value(field)
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return raw
    match = re.match(r"\s*(-?\d+(?:\.\d+)?)", str(raw)) if raw is not None else None
    if not match:
        return None
    number = float(match.group(1))
    return int(number) if number.is_integer() else number


def first_score(content: dict, names: tuple[str, ...]):
    return next((score(content[n]) for n in names if n in content and score(content[n]) is not None), None)


def _label(name: str) -> str:
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def review_text(content: dict) -> str:
    """The text fields of a review form joined in the stated order (see the module docstring)."""
    fields = {}
    for name, field in content.items():
        raw = value(field)
        if name in RATING_FIELDS or name in CONFIDENCE_FIELDS or NOT_TEXT.match(name):
            continue
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            raw = str(raw)
        if isinstance(raw, str) and raw.strip():
            fields[name] = raw.strip()
    ordered = [n for n in REVIEW_FIELD_ORDER if n in fields] + sorted(n for n in fields if n not in REVIEW_FIELD_ORDER)
    if len(ordered) == 1:
        return fields[ordered[0]]
    return "\n\n".join(f"{_label(n)}: {fields[n]}" if "\n" not in fields[n] else f"{_label(n)}:\n{fields[n]}"
                       for n in ordered)


def reviewer_name(signatures: list[str] | None) -> str | None:
    """``.../Submission12/Reviewer_abCd`` -> ``Reviewer_abCd`` (v2); ``.../Paper3/AnonReviewer2`` -> ``AnonReviewer2``."""
    if not signatures:
        return None
    return str(signatures[0]).rsplit("/", 1)[-1]


def review_record(content: dict, signatures: list[str] | None) -> dict:
    """The review in the project's format: ``{reviewer, text, rating, confidence}``."""
    return {"reviewer": reviewer_name(signatures), "text": review_text(content),
            "rating": first_score(content, RATING_FIELDS), "confidence": first_score(content, CONFIDENCE_FIELDS)}
