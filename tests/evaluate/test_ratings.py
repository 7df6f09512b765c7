"""Rating accuracy without a judge: the figures a user reads (MAE, Spearman, accept agreement, the human ceiling,
reviews without a rating) computed as stated, on made-up and on the real PeerRead ratings."""

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from lightning_review.data.records import RecordError
from lightning_review.evaluate.ratings import _spearman, markdown_lines, rating_accuracy, stated_rating
from tests.conftest import SHARED_DATA

HUMANS = {"a": [8, 6], "b": [3, 5], "c": [6, None, 8], "d": [7, 4], "e": [None]}


def review(rating):
    return f"The ablation is missing.\n\nRating: {rating}"


def test_a_review_states_its_rating_on_its_line_or_else_in_its_field_never_both_disagreeing():
    assert stated_rating(review(7)) == 7 and stated_rating("No line.") is None
    assert stated_rating("No line.", 6, "f:1") == 6.0  # the field stands in for a text without the line
    assert stated_rating(review(7), 7, "f:1") == 7 and stated_rating(review(6.5), None, "f:1") == 6.5
    with pytest.raises(RecordError, match=r"^f:3: the review's last line states 'Rating: 7' but the line's 'rating' "
                                          r"field is 5; they must agree"):
        stated_rating(review(7), 5, "f:3")
    for bad in ("7", True, float("nan")):
        with pytest.raises(RecordError, match=r"^f:2: field 'rating' must be a finite number or null"):
            stated_rating("No line.", bad, "f:2")


def test_figures_against_the_mean_human_rating_and_reviews_without_one_counted():
    system = {"a": 7, "b": 6, "c": 9, "d": None, "e": 5}  # d's review states no rating
    result = rating_accuracy(HUMANS, {"ours": system}, threshold=6, resamples=500)
    row = result["systems"]["ours"]
    assert result["papers_with_human_ratings"] == 4  # e's only review has no rating
    assert row["reviews"] == 4 and row["without_rating"] == 1 and row["without_rating_ids"] == ["d"]
    # a: 7 vs 7, b: 6 vs 4, c: 9 vs 7
    assert row["papers"] == 3 and row["mae"]["value"] == pytest.approx((0 + 2 + 2) / 3)
    assert row["spearman"]["value"] == pytest.approx(spearmanr([7, 6, 9], [7, 4, 7]).statistic)
    assert row["accept_agreement"]["value"] == pytest.approx(2 / 3)  # b: 6 is accept, a mean of 4 is not
    assert row["mae"]["low"] <= row["mae"]["value"] <= row["mae"]["high"]
    assert row["mean_rating"] == pytest.approx(22 / 3) and row["mean_human_rating"] == pytest.approx(6)


def test_the_human_ceiling_is_the_first_rated_reviewer_against_the_others():
    ceiling = rating_accuracy(HUMANS, {}, threshold=6, resamples=500)["human_ceiling"]
    # a: 8 vs 6, b: 3 vs 5, c: 6 vs 8, d: 7 vs 4 (e has one rated review: left out)
    assert ceiling["papers"] == 4 and ceiling["mae"]["value"] == pytest.approx(9 / 4)
    assert ceiling["accept_agreement"]["value"] == pytest.approx(3 / 4)
    assert ceiling["spearman"]["value"] == pytest.approx(spearmanr([8, 3, 6, 7], [6, 5, 8, 4]).statistic)


def test_no_human_rating_means_no_rating_section():
    assert rating_accuracy({"a": [None, None]}, {"ours": {"a": 5}}) is None
    assert markdown_lines(None) == []


def test_the_vectorized_spearman_is_scipys_with_ties_and_nan_when_constant():
    rng = np.random.default_rng(0)
    batch = rng.integers(1, 5, size=(50, 7)).astype(float), rng.integers(1, 5, size=(50, 7)).astype(float)
    expected = [spearmanr(a, b).statistic if np.ptp(a) and np.ptp(b) else np.nan for a, b in zip(*batch)]
    assert np.allclose(_spearman(*batch), expected, equal_nan=True)
    assert np.isnan(_spearman(np.array([5.0, 5, 5]), np.array([1.0, 2, 3])))


def test_intervals_are_seeded_and_the_report_shows_every_system_and_the_ceiling():
    system = {"a": 7, "b": 4, "c": 9, "d": 3}
    first = rating_accuracy(HUMANS, {"ours": system}, resamples=300, seed=1)
    assert first == rating_accuracy(HUMANS, {"ours": system}, resamples=300, seed=1)
    text = "\n".join(markdown_lines(first))
    assert "| ours | 4 | 0 of 4 |" in text and "| one human reviewer vs the others | 4 |" in text


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="the real PeerRead sample is not here")
def test_the_human_ceiling_on_the_real_iclr_2017_ratings():
    humans = {}
    for line in SHARED_DATA.read_text().splitlines():
        paper = json.loads(line)
        humans[paper["id"]] = [r["rating"] for r in paper["reviews"]]
    result = rating_accuracy(humans, {"constant 7": {pid: 7 for pid in humans}}, resamples=1000)
    ceiling = result["human_ceiling"]
    assert ceiling["papers"] == 8 and ceiling["mae"]["value"] == pytest.approx(1.125)
    assert ceiling["spearman"]["value"] == pytest.approx(0.2857, abs=1e-3)
    assert ceiling["accept_agreement"]["value"] == pytest.approx(0.75)
    # a constant rating has no ranking to give: MAE alone would flatter it, Spearman does not
    assert result["systems"]["constant 7"]["spearman"]["value"] is None


class NoMatchJudge:
    """A judge that finds points and matches none: the judge-free axes must not depend on it."""

    name, symmetric = "none", True

    def extract_points(self, review):
        from lightning_review.evaluate.points import split_points

        return split_points(review)

    def match(self, a, b):
        return []


def test_evaluate_reports_rating_accuracy_and_specificity_from_the_files(tmp_path):
    import asyncio

    from lightning_review.evaluate.command import load_input
    from lightning_review.evaluate.evaluator import evaluate
    from lightning_review.evaluate.report import markdown
    from tests.conftest import write_jsonl

    topics = ["graph diffusion", "topic models", "private teachers"]
    papers = [{"id": f"p{k}", "paper": f"We study {topics[k]}. " * 5 + "We train networks and report results. " * 3,
               "reviews": [{"text": f"Why is the {topics[k]} setup so small? The results are thin.", "rating": 4 + k},
                           {"text": f"The {topics[k]} analysis is loose and needs another look.", "rating": 6 + k}]}
              for k in range(3)]
    human = write_jsonl(tmp_path / "human.jsonl", papers)
    ours = write_jsonl(tmp_path / "ours.jsonl", [
        {"id": "p0", "review": "The graph diffusion proof has a gap somewhere.\n\nRating: 5"},
        {"id": "p1", "review": "The topic models baseline is missing here.\n\nRating: 8"},
        {"id": "p2", "review": "The experiments are limited overall, sadly."}])
    data = load_input(str(human), {"ours": str(ours)})
    data.rating_threshold = 6
    result = asyncio.run(evaluate(data, [NoMatchJudge()], resamples=200))
    row = result["ratings"]["systems"]["ours"]
    assert row["without_rating_ids"] == ["p2"] and row["mae"]["value"] == pytest.approx((0 + 2) / 2)  # p0: 5 vs 5, p1: 8 vs 6
    assert result["ratings"]["human_ceiling"]["mae"]["value"] == pytest.approx(2)
    assert result["specificity"]["systems"]["ours"]["specificity"]["value"] == pytest.approx(2 / 3)
    report = markdown(result)
    assert "## Rating accuracy (no judge)" in report and "## Specificity (no judge)" in report


def test_evaluate_uses_a_system_files_rating_field_where_the_text_has_no_line_and_refuses_a_conflict(tmp_path):
    """A system file from another source may keep the rating beside the review: it is scored where the text states
    none; a line and a field that disagree stop the run naming the file's line."""
    import asyncio
    import re

    from lightning_review.evaluate.command import load_input
    from lightning_review.evaluate.evaluator import evaluate
    from tests.conftest import write_jsonl

    human = write_jsonl(tmp_path / "human.jsonl", [
        {"id": f"p{k}", "paper": "We study graphs. " * 5, "reviews": [{"text": "The graph proofs need another look.", "rating": 4 + k}]}
        for k in range(3)])
    rows = [{"id": "p0", "review": "Thin results.", "rating": 5},  # the field alone: 5 vs 4
            {"id": "p1", "review": "Thin results.\n\nRating: 8", "rating": 8},  # both, agreeing: 8 vs 5
            {"id": "p2", "review": "Thin results.", "rating": None}]  # neither
    theirs = write_jsonl(tmp_path / "theirs.jsonl", rows)
    data = load_input(str(human), {"theirs": str(theirs)})
    assert data.system_ratings == {"theirs": {"p0": 5.0, "p1": 8.0, "p2": None}}
    row = asyncio.run(evaluate(data, [NoMatchJudge()], resamples=50))["ratings"]["systems"]["theirs"]
    assert row["papers"] == 2 and row["without_rating_ids"] == ["p2"]
    assert row["mae"]["value"] == pytest.approx((1 + 3) / 2)
    rows[1]["rating"] = 6
    conflict = write_jsonl(tmp_path / "conflict.jsonl", rows)
    with pytest.raises(RecordError, match=rf"^{re.escape(str(conflict))}:2: the review's last line states "
                                          r"'Rating: 8' but the line's 'rating' field is 6"):
        load_input(str(human), {"theirs": str(conflict)})
