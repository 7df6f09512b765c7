"""The judging statistics against known answers."""

import numpy as np
import pytest

from lightning_review.evaluate.statistics import (PaperScore, agreed_hits, cohen_kappa, hits, outcomes, sign_test,
                                                  spearman, win_rate)


def test_hits_precision_recall():
    score = PaperScore(hits=hits([5, 7, 8, 6.5, 9]), system_points=5, human_points=6)
    assert score.hits == 3 and score.precision == 0.6 and score.recall == 0.5
    assert hits([5, 7, 8, 6.5, 9], threshold=6) == 4 and hits([5, 7, 8, 6.5, 9], threshold=8) == 2


def test_outcomes_and_win_rate_counts():
    assert outcomes([3, 1, 2], [1, 1, 4]).tolist() == [1.0, 0.5, 0.0]
    result = win_rate([3, 1, 2, 5], [1, 1, 4, 2], resamples=2000)
    assert (result.wins, result.ties, result.losses, result.rate) == (2, 1, 1, 0.625)


def test_bootstrap_interval_covers_the_true_rate_on_synthetic_data():
    """A system that beats the other on each paper with probability 0.6: the 95% interval covers 0.6 in about 95%
    of repeated experiments (checked over 200 experiments of 150 papers)."""
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        wins = rng.random(150) < 0.6
        result = win_rate(wins.astype(float), (~wins).astype(float), resamples=1000, seed=trial)
        covered += result.low <= 0.6 <= result.high
    assert 0.90 <= covered / 200 <= 0.99


def test_sign_test_exact_values():
    assert sign_test(5, 5) == 1.0
    assert sign_test(9, 1) == pytest.approx(2 * (1 + 10) / 1024)  # P(X<=1) for Binomial(10, 1/2), two-sided
    assert sign_test(0, 0) == 1.0


def test_agreement_kappa_and_spearman():
    a = [True, True, False, False, True, False]
    assert cohen_kappa(a, a) == 1.0
    assert cohen_kappa(a, [not x for x in a]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)  # SciPy's value with ties


def test_both_directions_must_agree_and_flips_are_counted():
    forward = {(0, 0): 8, (1, 1): 7, (2, 2): 5}
    backward = {(0, 0): 9, (1, 1): 6, (2, 2): 7}
    agreed, flip_rate = agreed_hits(forward, backward, threshold=7)
    assert agreed == 1 and flip_rate == pytest.approx(2 / 3)


def test_win_rates_draw_their_interval_from_the_one_bootstrap_helper_with_scipys_resamples():
    """win_rate and the rating / specificity intervals share ``bootstrap_interval``: the same seed gives the same
    interval, which is SciPy's own percentile bootstrap of the mean outcome drawn with that seed."""
    from scipy import stats

    from lightning_review.evaluate.statistics import bootstrap_interval, mean_statistic

    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 4, 40), rng.integers(0, 4, 40)
    for seed in (0, 7):
        result = win_rate(a, b, resamples=999, seed=seed)
        shared = bootstrap_interval(mean_statistic, outcomes(a, b), resamples=999, seed=seed)
        scipy_interval = stats.bootstrap((outcomes(a, b),), np.mean, n_resamples=999, method="percentile",
                                         rng=np.random.default_rng(seed)).confidence_interval
        assert (result.low, result.high) == (shared["low"], shared["high"]) == (scipy_interval.low,
                                                                                scipy_interval.high)
    assert win_rate(a, b, resamples=999, seed=0).low != win_rate(a, b, resamples=999, seed=7).low  # seeded
    one = win_rate([2], [1])  # one paper: no interval to draw, the rate itself
    assert (one.rate, one.low, one.high) == (1.0, 1.0, 1.0)
    same = win_rate([1, 1, 1], [0, 0, 0], resamples=50)  # one outcome everywhere
    assert (same.low, same.high) == (1.0, 1.0)


def test_the_hit_rule_needs_both_directions_only_for_a_two_way_judge():
    from lightning_review.evaluate.statistics import is_hit

    assert is_hit(7, None, 7, False) and not is_hit(6.9, None, 7, False) and not is_hit(None, 9, 7, False)
    assert is_hit(8, 7, 7, True) and not is_hit(8, 6, 7, True) and not is_hit(6, 8, 7, True)
    assert not is_hit(9, None, 5, True)  # a two-way judge's pair matched one way only is never a hit
    assert hits([5, 7, None, 8], threshold=7) == 2
