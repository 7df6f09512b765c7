"""The controls the evaluator adds: a paper's own opening is judged as a system, and a judge that gives it the hits
of a human review is flagged as rewarding copying."""

import asyncio

from lightning_review.evaluate.evaluator import EXCERPT_CONTROL, HUMAN_CONTROL, EvaluationInput, evaluate, \
    paper_excerpt
from lightning_review.evaluate.embedding_judge import Match


class WordJudge:
    """Sentences as points; a pair matches (9/10) when most of their words are shared."""

    name = "words"
    symmetric = True

    def extract_points(self, review):
        return [s.strip(". ") for s in review.split(". ") if s.strip(". ")]

    def match(self, a, b):
        matches, used = [], set()
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                wx, wy = set(x.lower().split()), set(y.lower().split())
                if j not in used and len(wx & wy) / max(len(wx | wy), 1) > 0.5:
                    matches.append(Match(i, j, 9.0))
                    used.add(j)
                    break
        return matches


PAPER = ("We propose graph diffusion for segmentation. It is robust to label noise. We evaluate on three datasets. "
         "Results improve by four points.")


def run(human_reviews, **kw):
    data = EvaluationInput({"p1": human_reviews, "p2": human_reviews},
                           {"ours": {"p1": "The method is novel. Experiments are thin.",
                                     "p2": "The method is novel. Experiments are thin."}},
                           {"p1": PAPER, "p2": PAPER})
    return asyncio.run(evaluate(data, [WordJudge()], resamples=50, **kw))


def test_a_judge_that_rewards_restating_the_paper_is_flagged():
    # reviews that restate the paper: its opening matches them as well as another review does
    result = run(["We propose graph diffusion for segmentation. It is robust to label noise.",
                  "We propose graph diffusion for image segmentation. The ablations are missing."])
    assert EXCERPT_CONTROL in result["systems"] and HUMAN_CONTROL in result["systems"]
    (flag,) = result["flags"]["rewards_paper_copying"]
    assert flag["judge"] == "words" and flag["excerpt_hits"] >= flag["human_hits"] > 0
    assert all(EXCERPT_CONTROL not in (c["a"], c["b"]) for c in result["comparisons"])  # a control, not a rival


def test_no_flag_when_reviews_say_more_than_the_paper():
    result = run(["The experiments are thin and the baselines are old. The writing is clear.",
                  "The experiments are thin and the baselines are weak. Figures are small."])
    assert result["flags"]["rewards_paper_copying"] == []
    assert result["systems"][EXCERPT_CONTROL]["words"]["7"]["mean_hits"] == 0.0


def test_the_excerpt_is_the_opening_cut_after_a_sentence():
    assert paper_excerpt(PAPER, 60) == "We propose graph diffusion for segmentation. It is robust to label noise."[:44]
    assert paper_excerpt(PAPER, 1000) == PAPER
    assert paper_excerpt("x" * 100, 10) == "x" * 10  # no sentence end: a hard cut


def test_result_lists_every_matched_pair_for_an_audit():
    result = run(["The method is novel. The baselines are old.", "Experiments are thin. Figures are small."])
    paper = result["pairs"]["words"]["ours"]["p1"]
    assert paper["system_points"] == ["The method is novel", "Experiments are thin"]
    assert paper["human_points"][paper["matches"][0]["human_point"]] == "The method is novel"
    assert paper["human_point_review"] == [0, 0, 1, 1]  # which human review each pooled point comes from
    assert [(m["system_point"], m["human_point"], m["similarity"], m["hit"]) for m in paper["matches"]] == [
        (0, 0, 9.0, True), (1, 2, 9.0, True)]
    assert result["pairs"]["words"][HUMAN_CONTROL]["p1"]["human_point_review"] == [1, 1]  # review 0 is the system
