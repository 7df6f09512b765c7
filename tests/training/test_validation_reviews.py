"""Validation reviews log rating error beside the judge's hit rate when the data trains on the rating line, and a
review that states no rating is counted as missing, not scored; the judge gets the papers, as in evaluate."""

import math
from types import SimpleNamespace

import pytest
import torch

from lightning_review.evaluate.metric import RatingError, ReviewHitRate
from lightning_review.generation.decoding import ReviewRoom
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


class PaperRecordingJudge(NoMatchJudge):
    """Uses the paper as the offline judge does; records what it was given."""

    uses_paper = True

    def __init__(self):
        self.seen, self.corpus = [], None

    def extract_points(self, review, paper=None):
        self.seen.append((review, paper))
        return [review]

    def use_corpus(self, papers):
        self.corpus = list(papers)


class PaperOnlyTemplate:
    """A prompt template of the paper alone, so that each sample's ids reach generate_review as they are."""

    def prompt_template_tokens(self):
        return 0

    def prompt_from_ids(self, paper_ids, budget=None):
        return list(paper_ids), 0


def run_callback(generated, human_ratings, rating_line=True, judge=None, rank=0, world_size=1):
    samples = [{"id": f"p{i}", "input_ids": [i], "review": "The human review.", "rating": r, "paper": f"Paper {i}."}
               for i, r in enumerate(human_ratings)]
    datamodule = SimpleNamespace(review_samples=lambda n, rank, world: samples[:n][rank::world],
                                 rating_line=rating_line, tokenizer=TextTokenizer(generated),
                                 prompt_tokenizer=PaperOnlyTemplate)
    logged = {}
    module = SimpleNamespace(device=torch.device("cpu"), generate_review=lambda ids: ids,
                             review_room=lambda: ReviewRoom(100, 10, "model.max_new_tokens", "a test"),
                             log=lambda name, value, **kw: logged.__setitem__(name, float(value)))
    callback = ValidationReviews(len(samples))
    callback._metric = ReviewHitRate(judge or NoMatchJudge())  # the offline judge is tested elsewhere
    trainer = SimpleNamespace(datamodule=datamodule, sanity_checking=False, global_rank=rank, world_size=world_size)
    callback.on_validation_epoch_end(trainer, module)
    return logged


def test_the_judge_gets_each_samples_paper_and_all_sampled_papers_as_its_corpus():
    """So that in training, as in evaluate, restatements of the paper and boilerplate are no points."""
    judge = PaperRecordingJudge()
    run_callback(["Review of 0.", "Review of 1.", "Review of 2."], [5, 6, 7], judge=judge, rank=1, world_size=2)
    assert judge.corpus == ["Paper 0.", "Paper 1.", "Paper 2."]  # every rank: all the sampled papers
    assert judge.seen == [("Review of 1.", "Paper 1."), ("The human review.", "Paper 1.")]  # this rank's share


def test_a_judge_that_uses_no_paper_is_called_without_one():
    metric = ReviewHitRate(NoMatchJudge())
    metric.update(["A generated review."], ["A human review."], papers=["The paper."])
    assert float(metric.compute()["hits_per_review"]) == 0
    with pytest.raises(ValueError, match="2 papers for 1 generated reviews"):
        metric.update(["A generated review."], ["A human review."], papers=["One.", "Two."])


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
