"""evaluate's --threshold is a similarity on the judges' 5-10 scale: outside it every pair, or none, is a hit."""

import pytest

from lightning_review.evaluate.command import setting_problems


def problems(threshold):
    return setting_problems(threshold, concurrency=8, resamples=100, max_calls=None, max_tokens=None,
                            rating_threshold=6.0)


@pytest.mark.parametrize("threshold", [6, 7.5, 10])
def test_a_threshold_on_the_scale_is_taken(threshold):
    assert problems(threshold) == []


@pytest.mark.parametrize("threshold", [11, 10.5, 5, 0, -3])
def test_a_threshold_off_the_scale_is_named(threshold):
    (problem,) = problems(threshold)
    assert problem.startswith("--threshold must be above 5 and at most 10") and repr(threshold) in problem
