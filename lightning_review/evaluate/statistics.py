"""The statistics of pairwise review judging: hits per paper, win/tie/loss, win rates with bootstrap intervals, the
paired sign test, and agreement between judges (Cohen's kappa on hits, Spearman on similarities).

The statistics come from the libraries that own them (scipy.stats: Spearman, the exact binomial sign test, the
percentile bootstrap through the one helper ``bootstrap_interval``; scikit-learn: Cohen's kappa), with the few
conventions of this evaluator around them: a tie is half a win, an undefined agreement is NaN (reported as
"undefined"), two judges that agree on a constant verdict agree fully.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import cohen_kappa_score

THRESHOLDS = (6, 7, 8)  # Liang et al.'s 5-10 similarity scale: a hit is a matched pair at or above the threshold


def is_hit(forward: float | None, backward: float | None, threshold: float, both_directions: bool) -> bool:
    """The hit rule, the one every Python caller asks (the evaluator's counts and its ``pairs``, the audit page; the
    page's script is its tested twin): the system -> human similarity at or above ``threshold`` and, for a judge that
    matches both ways (a chat judge), the human -> system one too. A direction that did not pair the points (None)
    is no hit, so a pair a two-way judge matched one way only never counts."""
    if forward is None or forward < threshold:
        return False
    return not both_directions or (backward is not None and backward >= threshold)


def hits(similarities: Sequence[float], threshold: float = 7) -> int:
    """Hits among a one-way judge's similarities."""
    return sum(is_hit(s, None, threshold, False) for s in similarities)


@dataclass(frozen=True)
class PaperScore:
    """One system's review of one paper against the human review(s)."""

    hits: int
    system_points: int
    human_points: int

    @property
    def precision(self) -> float:
        return self.hits / self.system_points if self.system_points else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.human_points if self.human_points else 0.0


def outcomes(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Per paper: 1 where A scores higher, 0 where lower, 0.5 on a tie."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"systems scored on different papers: {a.shape} vs {b.shape}")
    return np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))


@dataclass(frozen=True)
class WinRate:
    wins: int
    ties: int
    losses: int
    rate: float  # (wins + ties / 2) / papers
    low: float  # bootstrap 95% interval over papers
    high: float
    sign_test_p: float  # two-sided, ties dropped

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def win_rate(a: Sequence[float], b: Sequence[float], resamples: int = 10_000, seed: int = 0,
             confidence: float = 0.95) -> WinRate:
    """System A against system B paper by paper, with a percentile bootstrap interval over papers
    (``bootstrap_interval`` of the mean outcome; one paper: the rate itself, no interval to draw)."""
    scores = outcomes(a, b)
    n = len(scores)
    if n == 0:
        raise ValueError("no papers to compare")
    wins, losses = int((scores == 1).sum()), int((scores == 0).sum())
    rate = float(scores.mean())
    interval = bootstrap_interval(mean_statistic, scores, resamples=resamples, seed=seed, confidence=confidence)
    low = rate if interval["low"] is None else interval["low"]
    high = rate if interval["high"] is None else interval["high"]
    return WinRate(wins, n - wins - losses, losses, rate, low, high, sign_test(wins, losses))


def mean_statistic(x, axis=-1):
    """The mean as ``bootstrap_interval`` calls a statistic (vectorized along ``axis``)."""
    return np.mean(x, axis=axis)


def bootstrap_interval(statistic: Callable[..., float], *samples: Sequence[float], resamples: int = 10_000,
                       seed: int = 0, confidence: float = 0.95) -> dict:
    """``{"value", "low", "high", "undefined_resamples"}``: the statistic and its percentile bootstrap interval over
    the paired samples (scipy.stats.bootstrap; ``statistic(*samples, axis=-1)`` is vectorized). The one bootstrap of
    the evaluator: win rates, rating accuracy and specificity all draw their intervals here, so one seed gives one
    set of resamples. Resamples where the statistic is undefined (a Spearman of constant ratings) are left out of
    the interval and counted; fewer than two observations give no interval (None)."""
    arrays = [np.asarray(s, dtype=float) for s in samples]
    n = len(arrays[0]) if arrays else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(statistic(*arrays, axis=-1)) if n else float("nan")
        if n < 2:
            return {"value": _finite(value), "low": None, "high": None, "undefined_resamples": 0}
        result = stats.bootstrap(tuple(arrays), statistic, paired=True, vectorized=True, n_resamples=resamples,
                                 method="percentile", rng=np.random.default_rng(seed))
    distribution = np.asarray(result.bootstrap_distribution, dtype=float)
    defined = distribution[np.isfinite(distribution)]
    alpha = (1 - confidence) / 2
    low, high = (np.quantile(defined, [alpha, 1 - alpha]) if len(defined) else (np.nan, np.nan))
    return {"value": _finite(value), "low": _finite(low), "high": _finite(high),
            "undefined_resamples": int(len(distribution) - len(defined))}


def _finite(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial test of wins against losses (ties dropped) under p = 1/2."""
    if wins + losses == 0:
        return 1.0
    return float(stats.binomtest(wins, wins + losses, 0.5).pvalue)


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Agreement of two judges on hit / no hit beyond chance (1 when both give one same verdict throughout)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if len(a) == 0:
        return float("nan")
    if np.array_equal(a, b) and np.all(a == a[0]):  # chance agreement is 1: scikit-learn's 0/0
        return 1.0
    return float(cohen_kappa_score(a, b))


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Rank correlation of two judges' similarities (average ranks for ties); NaN when either is constant."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def agreed_hits(forward: dict[tuple[int, int], float], backward: dict[tuple[int, int], float],
                threshold: float = 7) -> tuple[int, float]:
    """Order control: matching A->B and B->A (backward keys as (i of A, j of B) too); a hit counts only when both
    directions rate the pair at or above the threshold. Returns (agreed hits, flip rate: the share of pairs that are
    a hit in one direction only)."""
    pairs = set(forward) | set(backward)
    if not pairs:
        return 0, 0.0
    agreed = sum(is_hit(forward.get(p), backward.get(p), threshold, True) for p in pairs)
    fwd = {p for p in pairs if is_hit(forward.get(p), None, threshold, False)}
    bwd = {p for p in pairs if is_hit(backward.get(p), None, threshold, False)}
    return agreed, len(fwd ^ bwd) / max(len(fwd | bwd), 1)
