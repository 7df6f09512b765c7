"""The controls the evaluator adds: a paper's own opening and one generic review are judged as systems (a judge
that gives them the hits of a human review is flagged), and every system is judged against another paper's human
reviews (its shuffled floor); --controls chooses which run."""

import asyncio

import pytest

from lightning_review.errors import UserError
from lightning_review.evaluate.embedding_judge import Match
from lightning_review.evaluate.evaluator import EXCERPT_CONTROL, GENERIC_CONTROL, GENERIC_REVIEW, HUMAN_CONTROL, \
    EvaluationInput, derangement, evaluate, paper_excerpt
from lightning_review.evaluate.report import markdown


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


def two_papers(**kw):
    data = EvaluationInput({"p1": ["The baselines are old. The proof is loose.", "The baselines are old."],
                            "p2": ["The figures are small. Tables lack units.", "Tables lack units."]},
                           {"ours": {"p1": "The baselines are old.", "p2": "Tables lack units."}},
                           {"p1": PAPER, "p2": PAPER})
    return asyncio.run(evaluate(data, [WordJudge()], resamples=50, **kw))


def test_shuffled_floor_judges_each_review_against_another_papers_humans():
    result = two_papers()
    floor = result["shuffled_floor"]["words"]
    assert floor["ours"]["against"] == {"p1": "p2", "p2": "p1"}  # a derangement: never the paper itself
    assert floor["ours"]["7"] == {"floor_hits": 0.0, "hits": 1.0, "hits_above_floor": 1.0}
    assert floor[HUMAN_CONTROL]["7"]["hits_above_floor"] == 1.0
    assert result["flags"]["no_better_than_floor"] == []
    assert floor[GENERIC_CONTROL]["7"]["hits_above_floor"] == 0.0  # one review for every paper: no better anywhere
    assert "## Hits above the shuffled-paper floor (threshold 7)" in markdown(result)


def test_a_system_that_reviews_the_wrong_paper_is_flagged_at_its_floor():
    data = EvaluationInput({"p1": ["The baselines are old.", "The baselines are old."],
                            "p2": ["Tables lack units.", "Tables lack units."]},
                           {"ours": {"p1": "Tables lack units.", "p2": "The baselines are old."}})
    result = asyncio.run(evaluate(data, [WordJudge()], resamples=50))
    (flag,) = result["flags"]["no_better_than_floor"]
    assert flag["system"] == "ours" and flag["hits"] == 0.0 < flag["floor_hits"] == 1.0


def test_the_generic_review_is_a_control_and_a_judge_that_rewards_it_is_flagged():
    generic_sentence = GENERIC_REVIEW.split("\n")[3].removeprefix("1. ").rstrip(".")
    data = EvaluationInput({"p1": [f"{generic_sentence}. The proof is loose.", "Figures are small."]},
                           {"ours": {"p1": "The proof is loose."}})
    result = asyncio.run(evaluate(data, [WordJudge()], resamples=50))
    assert result["systems"][GENERIC_CONTROL]["words"]["7"]["mean_hits"] == 1.0
    assert all(GENERIC_CONTROL not in (c["a"], c["b"]) for c in result["comparisons"])
    (flag,) = result["flags"]["rewards_generic_review"]
    assert flag["generic_hits"] >= flag["human_hits"]


def test_controls_choose_which_run():
    result = two_papers(controls=("human",))
    assert set(result["systems"]) == {"ours", HUMAN_CONTROL} and result["shuffled_floor"] == {}
    assert result["controls"] == ["human"]
    result = two_papers(controls=())
    assert set(result["systems"]) == {"ours"}
    with pytest.raises(UserError, match="unknown controls"):
        two_papers(controls=("floor",))


def test_derangement_is_seeded_and_has_no_fixed_point():
    ids = [f"p{i}" for i in range(10)]
    first = derangement(ids, seed=3)
    assert first == derangement(ids, seed=3) and sorted(first.values()) == ids
    assert all(first[p] != p for p in ids) and derangement(ids, seed=4) != first
    assert derangement(["p0"]) == {}


def test_controls_that_cannot_run_on_one_paper_are_flagged_with_the_reason():
    data = EvaluationInput({"p1": ["The proof is loose."]}, {"ours": {"p1": "The proof is loose."}}, {"p1": PAPER})
    result = asyncio.run(evaluate(data, [WordJudge()], resamples=50))
    assert result["shuffled_floor"] == {} and result["specificity"] is None
    assert [f["what"] for f in result["flags"]["not_run"]] == ["the shuffled-paper floor", "the human control",
                                                                 "specificity"]
    report = markdown(result)
    assert "- the shuffled-paper floor did not run: it needs the human reviews of at least 2 papers" in report
    assert "- specificity did not run: it needs at least 2 paper texts" in report and "- none" not in report
    assert two_papers()["flags"]["not_run"] == []


@pytest.mark.parametrize("given, chosen", [(["--controls", "human"], ("human",)),
                                           (["--controls", "human,shuffled"], ("human", "shuffled")),
                                           (["--controls", "[excerpt, generic]"], ("excerpt", "generic")),
                                           ([], None)])
def test_controls_flag_takes_a_bare_name_a_comma_list_or_a_list(given, chosen):
    """``--controls human`` was a jsonargparse usage error (only the list form parsed)."""
    from jsonargparse import ArgumentParser

    from lightning_review.evaluate.command import CONTROL_KINDS, chosen_controls, evaluate

    parser = ArgumentParser()
    parser.add_function_arguments(evaluate)
    args = parser.parse_args(["--human_file", "h.jsonl", "--systems", "{}", "--output_dir", "o", *given])
    assert chosen_controls(args.controls) == (chosen or CONTROL_KINDS)


def wrong_paper_result():
    """ours reviews each paper with the other paper's criticism: no hit on its own paper, one at its floor."""
    data = EvaluationInput({"p1": ["The baselines are old.", "The baselines are old. The proof is loose."],
                            "p2": ["Tables lack units.", "Tables lack units. Figures are small."]},
                           {"ours": {"p1": "Tables lack units.", "p2": "The baselines are old."}})
    return asyncio.run(evaluate(data, [WordJudge()], resamples=50))


def test_the_floors_pairs_are_in_the_result_naming_the_paper_they_were_judged_against():
    """result.json's floor_pairs hold the shuffled floor's matched pairs as pairs holds the reviews' own, so a reader
    can see why the floor hits: each names the other paper, whose human points they are, and its hits are the
    floor's."""
    result = wrong_paper_result()
    floor, own = result["floor_pairs"]["words"], result["pairs"]["words"]
    assert {pid: f["against"] for pid, f in floor["ours"].items()} == {"p1": "p2", "p2": "p1"} \
        == result["shuffled_floor"]["words"]["ours"]["against"]
    p1 = floor["ours"]["p1"]
    assert p1["system_points"] == ["Tables lack units"] and p1["human_point_review"] == [0, 1, 1]
    assert p1["human_points"] == ["Tables lack units", "Tables lack units", "Figures are small"]  # p2's reviews
    assert [(m["system_point"], m["human_point"], m["hit"]) for m in p1["matches"]] == [(0, 0, True)]
    assert own["ours"]["p1"]["matches"] == [] and "against" not in own["ours"]["p1"]
    for system, per_paper in floor.items():  # the pairs' hits are the floor the report gives
        hits = [sum(m["hit"] for m in judged["matches"]) for judged in per_paper.values()]
        assert sum(hits) / len(hits) == result["shuffled_floor"]["words"][system]["7"]["floor_hits"], system
    assert floor[HUMAN_CONTROL]["p1"]["human_point_review"] == [1, 1]  # p2's review 0 left out, as on its own paper
    assert two_papers(controls=("human",))["floor_pairs"] == {"words": {}}
