"""Rating accuracy: the judge-free axis. A system's review states its rating on its last ``Rating: <n>`` line
(lightning_review.data.rating_line.parse_rating, the rule ``generate`` uses for its ``rating`` field); a system file
whose review text has no such line may give the rating in its ``rating`` field instead (``stated_rating``). It is
scored against the mean of the paper's human ratings, with no judge in between.

Per system, over the papers that have both a system rating and at least one human rating:
  - mean absolute error (MAE) of the system's rating against the mean human rating;
  - Spearman's rank correlation over papers (scipy.stats.spearmanr): does it order papers as the reviewers did;
  - accept/reject agreement at ``threshold``: the share of papers where rating >= threshold on both sides or on
    neither (the ICLR 2017 scale puts 6, "marginally above acceptance threshold", on the accept side);
each with a 95% percentile bootstrap interval over papers (statistics.bootstrap_interval, the evaluator's one
bootstrap). Reviews that state no rating in that form are counted (and listed), never guessed.

The human ceiling: the same figures for one human reviewer (the first rated review of each paper, as the judge's
human control takes the first review) against the mean of the other reviewers of that paper, on papers with at
least two rated reviews. A system near the ceiling rates papers about as well as another reviewer would.
"""

from __future__ import annotations

import warnings
from typing import Callable, Mapping, Sequence

import numpy as np

from ..data.rating_line import format_rating, parse_rating
from ..data.records import RecordError, check_rating
from .statistics import bootstrap_interval

CEILING = "one human reviewer vs the others"


def _mae(predicted, reference, axis=-1):
    return np.mean(np.abs(predicted - reference), axis=axis)


def _spearman(predicted, reference, axis=-1):
    """Spearman's rho along the last axis (resampled batches at once): Pearson's r of the average ranks, which is
    scipy.stats.spearmanr's definition (tested equal); NaN where a side is constant or fewer than three papers."""
    from scipy.stats import pearsonr, rankdata

    predicted, reference = np.asarray(predicted, dtype=float), np.asarray(reference, dtype=float)
    if predicted.shape[-1] < 3:
        return np.full(predicted.shape[:-1], np.nan)[()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant side: NaN, which the caller reports as undefined
        return pearsonr(rankdata(predicted, axis=-1), rankdata(reference, axis=-1), axis=-1).statistic


def agreement_statistic(threshold: float) -> Callable[..., float]:
    """The share of papers where both sides fall on the same side of ``threshold`` (>= threshold is accept)."""
    def agreement(predicted, reference, axis=-1):
        return np.mean((predicted >= threshold) == (reference >= threshold), axis=axis)
    return agreement


def accuracy(predicted: Sequence[float], reference: Sequence[float], threshold: float, resamples: int = 10_000,
             seed: int = 0) -> dict:
    """MAE, Spearman and accept/reject agreement of ``predicted`` against ``reference`` ratings (one pair a
    paper), each with its bootstrap interval; the mean of each side shows a system that rates everything high."""
    kw = {"resamples": resamples, "seed": seed}
    return {"papers": len(predicted),
            "mean_rating": float(np.mean(predicted)) if len(predicted) else None,
            "mean_human_rating": float(np.mean(reference)) if len(reference) else None,
            "mae": bootstrap_interval(_mae, predicted, reference, **kw),
            "spearman": bootstrap_interval(_spearman, predicted, reference, **kw),
            "accept_agreement": bootstrap_interval(agreement_statistic(threshold), predicted, reference, **kw)}


def stated_rating(review: str, field: object = None, where: str = "") -> float | None:
    """The rating a system's review states: its last ``Rating: <n>`` line, else the ``rating`` field of its line in
    the system file (a source that keeps the rating beside the text); None when neither gives one. A field that is
    no number, or that disagrees with the line, is a RecordError naming ``where`` (file:line): which of the two the
    system meant cannot be guessed."""
    line = parse_rating(review)
    given = check_rating(field, where)
    if given is None or line is None:
        return line if given is None else float(given)
    if float(given) != line:
        raise RecordError(f"{where}: the review's last line states {format_rating(line)!r} but the line's 'rating' "
                          f"field is {given!r}; they must agree (generate writes the line's rating there): correct "
                          "one of the two, or drop the field to use the line", "rating_conflict")
    return line


def rating_accuracy(human_ratings: Mapping[str, Sequence[float | None]],
                    systems: Mapping[str, Mapping[str, float | None]], threshold: float = 6.0,
                    resamples: int = 10_000, seed: int = 0) -> dict | None:
    """Every system's rating accuracy and the human ceiling (see the module docstring); None when no paper has a
    human rating (there is nothing to score against).

    ``human_ratings``: paper id -> the ratings of its human reviews (None for a review without one);
    ``systems``: system name -> {paper id -> the rating its review states (``stated_rating``), None for none}."""
    rated = {pid: [float(r) for r in ratings if r is not None] for pid, ratings in human_ratings.items()}
    rated = {pid: ratings for pid, ratings in rated.items() if ratings}
    if not rated:
        return None
    result: dict = {"threshold": threshold, "papers_with_human_ratings": len(rated), "systems": {}}
    for name, reviews in systems.items():  # reviews: paper id -> stated rating
        scored = {pid: rating for pid, rating in reviews.items() if pid in rated}
        unparsable = sorted(pid for pid, rating in scored.items() if rating is None)
        pids = sorted(pid for pid, rating in scored.items() if rating is not None)
        result["systems"][name] = {
            "reviews": len(scored), "without_rating": len(unparsable), "without_rating_ids": unparsable,
            **accuracy(np.array([scored[p] for p in pids]), np.array([np.mean(rated[p]) for p in pids]), threshold,
                       resamples, seed)}
    several = sorted(pid for pid, ratings in rated.items() if len(ratings) >= 2)
    result["human_ceiling"] = {
        "name": CEILING, **accuracy(np.array([rated[p][0] for p in several]),
                                    np.array([np.mean(rated[p][1:]) for p in several]), threshold, resamples, seed)}
    return result


def markdown_lines(ratings: dict | None) -> list[str]:
    """The report's section on rating accuracy (nothing when the human file has no ratings)."""
    if not ratings:
        return []
    lines = ["## Rating accuracy (no judge)", "",
             f"Each review's `Rating: <n>` line against the mean human rating of its paper "
             f"({ratings['papers_with_human_ratings']} papers with human ratings); accept means a rating >= "
             f"{ratings['threshold']:g}. 95% bootstrap intervals over papers. The human ceiling is one reviewer of "
             "each paper against the mean of the others.", "",
             "| system | papers rated | without a rating | mean rating (human) | MAE [95% CI] | Spearman [95% CI] | "
             "accept/reject agreement [95% CI] |", "|---|---|---|---|---|---|---|"]
    rows = [(name, row) for name, row in ratings["systems"].items()] + [(CEILING, ratings["human_ceiling"])]
    for name, row in rows:
        missing = f"{row['without_rating']} of {row['reviews']}" if "reviews" in row else "-"
        means = (f"{row['mean_rating']:.2f} ({row['mean_human_rating']:.2f})" if row["mean_rating"] is not None
                 else "-")
        lines.append(f"| {name} | {row['papers']} | {missing} | {means} | {_ci(row['mae'], '.2f')} | "
                     f"{_ci(row['spearman'], '.2f')} | {_ci(row['accept_agreement'], '.0%')} |")
    return lines + [""]


def _ci(entry: dict, fmt: str) -> str:
    if entry["value"] is None:
        return "n/a"
    text = format(entry["value"], fmt)
    if entry["low"] is not None and entry["high"] is not None:
        text += f" [{format(entry['low'], fmt)}, {format(entry['high'], fmt)}]"
    return text
