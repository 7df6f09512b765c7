"""The statistics of pairwise review judging: hits per paper, win/tie/loss, win rates with bootstrap intervals, the
paired sign test, and agreement between judges (Cohen's kappa on hits, Spearman on similarities).

Pure NumPy/SciPy-free code on purpose: each function is a few lines of textbook formula, tested against known
answers, and the evaluator must run where SciPy is not installed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

THRESHOLDS = (6, 7, 8)  # Liang et al.'s 5-10 similarity scale: a hit is a matched pair at or above the threshold


def hits(similarities: Sequence[float], threshold: float = 7) -> int:
    return int(sum(s >= threshold for s in similarities))


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
    """System A against system B paper by paper, with a percentile bootstrap interval over papers."""
    scores = outcomes(a, b)
    n = len(scores)
    if n == 0:
        raise ValueError("no papers to compare")
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    wins, losses = int((scores == 1).sum()), int((scores == 0).sum())
    return WinRate(wins, n - wins - losses, losses, float(scores.mean()), float(np.quantile(means, alpha)),
                   float(np.quantile(means, 1 - alpha)), sign_test(wins, losses))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial test of wins against losses (ties dropped) under p = 1/2."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Agreement of two judges on hit / no hit beyond chance."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if len(a) == 0:
        return float("nan")
    observed = float((a == b).mean())
    pa, pb = a.mean(), b.mean()
    expected = float(pa * pb + (1 - pa) * (1 - pb))
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Rank correlation of two judges' similarities (average ranks for ties)."""
    ra, rb = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):  # ties share their average rank
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def agreed_hits(forward: dict[tuple[int, int], float], backward: dict[tuple[int, int], float],
                threshold: float = 7) -> tuple[int, float]:
    """Order control: matching A->B and B->A (backward keys as (i of A, j of B) too); a hit counts only when both
    directions rate the pair at or above the threshold. Returns (agreed hits, flip rate: the share of pairs that are
    a hit in one direction only)."""
    pairs = set(forward) | set(backward)
    if not pairs:
        return 0, 0.0
    fwd = {p for p in pairs if forward.get(p, 0) >= threshold}
    bwd = {p for p in pairs if backward.get(p, 0) >= threshold}
    return len(fwd & bwd), len(fwd ^ bwd) / max(len(fwd | bwd), 1)
