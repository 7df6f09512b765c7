"""Offline point splitting follows the review's own structure."""

from lightning_review.evaluate.points import split_points


def test_numbered_and_bulleted_items_become_points():
    review = """Summary: the paper proposes X.
1. The evaluation uses only two small datasets, which limits the claims.
2) The ablation of the attention module is missing entirely.
- Typos.
- The related work omits the closest prior method by Smith et al."""
    assert split_points(review) == [
        "The evaluation uses only two small datasets, which limits the claims.",
        "The ablation of the attention module is missing entirely.",
        "The related work omits the closest prior method by Smith et al.",
    ]


def test_prose_review_is_split_into_sentences():
    review = ("The method is novel and clearly motivated. However, the experiments lack strong baselines. "
              "Ok. The theory section assumes convexity without saying so.")
    assert split_points(review) == ["The method is novel and clearly motivated.",
                                    "However, the experiments lack strong baselines.",
                                    "The theory section assumes convexity without saying so."]
