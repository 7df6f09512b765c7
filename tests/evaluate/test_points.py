"""Offline point splitting follows the review's own structure, and the points the offline judge keeps are the
review's criticisms: never its summary, its praise or its strengths."""

from lightning_review.evaluate.points import criticism_points, heading_kind, split_points


def test_numbered_and_bulleted_items_become_points():
    review = """Summary: the paper proposes X.
1. The evaluation uses only two small datasets, which limits the claims.
2) The ablation of the attention module is missing entirely.
- Typos.
- The related work omits the closest prior method by Smith et al."""
    assert split_points(review) == [
        "Summary: the paper proposes X.",
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


def test_sections_decide_by_their_heading():
    review = """Summary:
The paper proposes graph diffusion for segmentation and evaluates it on three datasets.

Strengths:
1. The idea is elegant and the results are strong.
2. The paper is clearly written and easy to follow.
3. Although simple, the method beats every baseline.

Weaknesses:
1. The evaluation covers three small datasets only.
2. Training time is never reported for the diffusion step.

Questions for the authors:
- What is the sensitivity to the number of diffusion steps."""
    assert criticism_points(review) == ["The evaluation covers three small datasets only.",
                                        "Training time is never reported for the diffusion step.",
                                        "What is the sensitivity to the number of diffusion steps."]
    assert [heading_kind(h) for h in ("Pros", "Cons", "Paper summary", "Minor comments", "Clarity")] == [
        "strengths", "criticism", "summary", "criticism", "other"]


def test_without_headings_only_criticism_language_is_kept():
    review = ("This paper proposes graph diffusion for image segmentation on three datasets. The results are "
              "strong and the writing is clear. However, the comparison with recent transformers is missing. "
              "Why is the diffusion run for exactly ten steps? The authors should report the training time.\n"
              "+The ablation over the kernels is thorough and convincing.\n"
              "-It would be interesting to see results on medical images.")
    assert criticism_points(review) == ["However, the comparison with recent transformers is missing.",
                                        "Why is the diffusion run for exactly ten steps?",
                                        "The authors should report the training time.",
                                        "It would be interesting to see results on medical images."]


def test_a_summary_heading_covers_its_paragraph_only():
    review = ("Summary: the paper trains a denoising chain for image generation with few steps.\n\n"
              "The log-likelihood comparison relies on Parzen estimates, which are unreliable.")
    assert criticism_points(review) == ["The log-likelihood comparison relies on Parzen estimates, which are "
                                        "unreliable."]


def test_a_strengths_and_weaknesses_heading_is_judged_sentence_by_sentence():
    """OpenReview's NeurIPS form has one "Strengths and weaknesses" section: its weaknesses are points, its praise not
    (left out whole, the weaknesses of 99 of 601 NeurIPS 2025 reviews, written without a sub-heading, were lost)."""
    review = """STRENGTHS AND WEAKNESSES:
The method is elegant and the writing is clear. However, the evaluation covers three small datasets only.
The training time of the diffusion step is never reported, which is a concern.

QUESTIONS:
How sensitive is it to the number of diffusion steps?"""
    assert criticism_points(review) == ["However, the evaluation covers three small datasets only.",
                                        "The training time of the diffusion step is never reported, which is a "
                                        "concern.",
                                        "How sensitive is it to the number of diffusion steps?"]
    assert [heading_kind(h) for h in ("Strengths and weaknesses", "Pros & cons", "Summary and concerns")] == [
        "other", "other", "summary"]
