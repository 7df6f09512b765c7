"""Validation reviews log rating error beside the judge's hit rate when the data trains on the rating line, and a
review that states no rating is counted as missing, not scored."""

import math
from types import SimpleNamespace

import pytest
import torch

from lightning_review.evaluate.metric import RatingError, ReviewHitRate
from lightning_review.training.validation_reviews import ValidationReviews


class NoMatchJudge:
    def extract_points(self, review):
        return [review]

    def match(self, a, b):
        return []


class TextTokenizer:
    """Ids are indices into the generated texts, so the callback's decode returns them."""

    def __init__(self, texts):
        self.texts = texts

    def decode(self, ids, skip_special_tokens=True):
        return self.texts[ids[0]]


def run_callback(generated, human_ratings, rating_line=True):
    samples = [{"id": f"p{i}", "input_ids": [i], "review": "The human review.", "rating": r}
               for i, r in enumerate(human_ratings)]
    datamodule = SimpleNamespace(review_samples=lambda n, rank, world: samples[:n], rating_line=rating_line,
                                 tokenizer=TextTokenizer(generated))
    logged = {}
    module = SimpleNamespace(device=torch.device("cpu"), generate_review=lambda ids: ids,
                             log=lambda name, value, **kw: logged.__setitem__(name, float(value)))
    callback = ValidationReviews(len(samples))
    callback._metric = ReviewHitRate(NoMatchJudge())  # the offline judge is tested elsewhere
    trainer = SimpleNamespace(datamodule=datamodule, sanity_checking=False, global_rank=0, world_size=1)
    callback.on_validation_epoch_end(trainer, module)
    return logged


def test_rating_error_is_logged_when_the_data_has_the_rating_line():
    logged = run_callback(["Thin evaluation.\n\nRating: 5", "Good.\n\nRating: 8", "No rating here."], [7, 6, 4])
    assert logged["val_review_rating_mae"] == pytest.approx((2 + 2) / 2)
    assert logged["val_review_rating_missing"] == pytest.approx(1 / 3)
    assert "val_review_recall" in logged


def test_no_rating_metrics_without_the_rating_line_and_nan_when_none_is_stated():
    assert not any("rating" in name for name in run_callback(["Rating: 5"], [7], rating_line=False))
    logged = run_callback(["No rating.", "None here either."], [7, 6])
    assert math.isnan(logged["val_review_rating_mae"]) and logged["val_review_rating_missing"] == 1


def test_rating_error_sums_over_updates_like_a_metric_over_processes():
    metric = RatingError()
    metric.update(["Rating: 3"], [5])
    metric.update(["Rating: 9", "nothing"], [8, 2])
    out = metric.compute()
    assert float(out["rating_mae"]) == pytest.approx(1.5) and float(out["rating_missing"]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="2 generated reviews for 1 ratings"):
        metric.update(["a", "b"], [1])
