"""Specificity: the share of a review's points that name something particular to its own paper, the judge-free
counterpart of the MARG study's "generic comments" (a comment that could be pasted under any paper is generic).

The rule, stated so it can be audited:
  1. A paper's key terms are its words that are frequent in it and rare across the papers being evaluated: scikit-
     learn's TF-IDF over the papers' texts (lower-cased words of at least three letters or digits starting with a
     letter, English stop words removed, sublinear term frequency), keeping the words that occur at least
     ``MIN_COUNT`` times in the paper and in at most ``MAX_DF`` of the papers, and of those the ``TOP_K`` with the
     highest TF-IDF weight in the paper. A final ``s`` is dropped on both sides (``teachers`` names ``teacher``).
  2. A review's points are split as the offline judge splits them (lightning_review.evaluate.points: items, else
     sentences, at least 25 characters); a point is specific when it contains one of its own paper's key terms.
  3. A review's specificity is its specific points over its points; a system's is the mean over the papers it
     reviewed (reviews with no point are counted, not scored), with a 95% bootstrap interval over papers; the
     humans' is the mean over papers of the mean over each paper's human reviews.

What it does not tell: a review that restates the paper is very specific (the paper-excerpt control shows how
much); specificity separates the generic from the particular, the judge tells a criticism from a summary. It needs
at least two papers (rarity across one paper means nothing).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..errors import UserError
from .points import split_points
from .statistics import bootstrap_interval, mean_statistic

MIN_COUNT = 3  # "frequent in this paper"
MAX_DF = 0.5  # "rare across the corpus": in at most half of the papers
TOP_K = 40  # the paper's most particular words by TF-IDF weight
TOKEN_PATTERN = r"(?u)\b[a-zA-Z][a-zA-Z0-9]{2,}\b"
HUMANS = "human reviews"


def _fold(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else word


class KeyTerms:
    """The key terms of each paper of a corpus (rule 1 of the module docstring) and the test of a point."""

    def __init__(self, paper_texts: Mapping[str, str]):
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        if len(paper_texts) < 2:
            raise UserError(f"specificity needs at least two papers to tell what is rare across them, got "
                            f"{len(paper_texts)}")
        self.ids = list(paper_texts)
        counter = CountVectorizer(lowercase=True, stop_words="english", token_pattern=TOKEN_PATTERN)
        counts = counter.fit_transform([paper_texts[pid] for pid in self.ids])
        weights = TfidfTransformer(sublinear_tf=True).fit_transform(counts).toarray()
        counts = counts.toarray()
        vocabulary = counter.get_feature_names_out()
        rare = (counts > 0).sum(axis=0) <= MAX_DF * len(self.ids)
        self.analyzer = counter.build_analyzer()
        self.terms: dict[str, list[str]] = {}
        for row, pid in enumerate(self.ids):
            candidates = np.flatnonzero(rare & (counts[row] >= MIN_COUNT))
            best = candidates[np.argsort(-weights[row, candidates], kind="stable")[:TOP_K]]
            self.terms[pid] = [str(vocabulary[i]) for i in best]
        self._folded = {pid: {_fold(t) for t in terms} for pid, terms in self.terms.items()}

    def names_paper(self, point: str, paper_id: str) -> bool:
        """Whether ``point`` contains one of ``paper_id``'s key terms."""
        return any(_fold(w) in self._folded[paper_id] for w in self.analyzer(point))

    def review_specificity(self, review: str, paper_id: str) -> float | None:
        """The share of the review's points that name its paper; None for a review with no point."""
        points = split_points(review)
        if not points:
            return None
        return sum(self.names_paper(p, paper_id) for p in points) / len(points)


def _score(per_paper: dict[str, float], resamples: int, seed: int) -> dict:
    values = [per_paper[pid] for pid in sorted(per_paper)]
    return bootstrap_interval(mean_statistic, values, resamples=resamples, seed=seed)


def specificity(paper_texts: Mapping[str, str], systems: Mapping[str, Mapping[str, str]],
                human_reviews: Mapping[str, Sequence[str]], resamples: int = 10_000, seed: int = 0) -> dict | None:
    """Specificity of every system and of the human reviews (see the module docstring); None with fewer than two
    paper texts. ``systems``: name -> {paper id -> review}; ``human_reviews``: paper id -> its human reviews."""
    texts = {pid: text for pid, text in paper_texts.items() if text and text.strip()}
    if len(texts) < 2:
        return None
    key = KeyTerms(texts)
    result: dict = {"papers": len(texts), "rule": {"min_count": MIN_COUNT, "max_df": MAX_DF, "top_k": TOP_K},
                    "systems": {}, "key_terms": {pid: terms[:10] for pid, terms in key.terms.items()}}
    named = {**{name: {pid: [review] for pid, review in reviews.items()} for name, reviews in systems.items()},
             HUMANS: {pid: list(reviews) for pid, reviews in human_reviews.items()}}
    for name, per_paper in named.items():
        scores, pointless = {}, []
        for pid, reviews in per_paper.items():
            if pid not in texts:
                continue
            each = [key.review_specificity(review, pid) for review in reviews]
            each = [s for s in each if s is not None]
            if each:
                scores[pid] = float(np.mean(each))
            else:
                pointless.append(pid)
        result["systems"][name] = {"papers": len(scores), "without_points": sorted(pointless),
                                   "specificity": _score(scores, resamples, seed) if scores else None}
    return result


def markdown_lines(result: dict | None) -> list[str]:
    """The report's section on specificity (nothing without at least two paper texts)."""
    if not result:
        return []
    rule = result["rule"]
    lines = ["## Specificity (no judge)", "",
             "The share of a review's points that name one of its paper's key terms: words frequent in that paper "
             f"(at least {rule['min_count']} times) and rare across the {result['papers']} papers (in at most "
             f"{rule['max_df']:.0%} of them), its top {rule['top_k']} by TF-IDF. Low means generic comments that fit "
             "any paper; the paper excerpt is specific by construction (specificity does not tell a criticism from a "
             "summary: the judge does).", "",
             "| system | papers | specificity [95% CI] | reviews with no point |", "|---|---|---|---|"]
    for name, row in result["systems"].items():
        score = row["specificity"]
        text = "n/a" if score is None or score["value"] is None else f"{score['value']:.0%}"
        if score and score["low"] is not None:
            text += f" [{score['low']:.0%}, {score['high']:.0%}]"
        lines.append(f"| {name} | {row['papers']} | {text} | {len(row['without_points'])} |")
    return lines + [""]
