"""Specificity without a judge: a point is specific when it names one of its paper's key terms (frequent in the
paper, rare across the papers); generic comments score 0, on made-up papers and on the real PeerRead sample."""

import json

import numpy as np
import pytest

from lightning_review.errors import UserError
from lightning_review.evaluate.specificity import HUMANS, KeyTerms, markdown_lines, specificity
from tests.conftest import SHARED_DATA

COMMON = "We train a network and report results on the benchmark with experiments. "
PAPERS = {
    "p1": COMMON * 3 + "Teachers vote on labels. The teacher ensemble protects privacy. Privacy of the teacher. "
                       "Each teacher guards privacy. A single mention of lighthouse.",
    "p2": COMMON * 3 + "The diffusion chain denoises. The diffusion operator infuses. Diffusion again, chain again, "
                       "chain once more.",
    "p3": COMMON * 3 + "Topic models with Dirichlet priors. Topic inference. Topic coherence and Dirichlet "
                       "sampling with a Dirichlet prior.",
}
GENERIC = ("The experiments are limited and more baselines are needed. The results on the benchmark are not "
           "convincing enough.")


def test_key_terms_are_frequent_in_the_paper_and_rare_across_papers():
    key = KeyTerms(PAPERS)
    assert {"teacher", "privacy"} <= set(key.terms["p1"]) and "lighthouse" not in key.terms["p1"]  # once only
    assert not {"network", "results", "benchmark"} & {t for terms in key.terms.values() for t in terms}  # everywhere
    assert key.names_paper("The teachers could collude.", "p1")  # plural folded onto the key term
    assert not key.names_paper("The teachers could collude.", "p2")


def test_generic_points_score_zero_and_particular_ones_count():
    humans = {"p1": ["The privacy analysis of the teacher votes is loose. The writing is fine and clear overall."],
              "p2": ["Why does the diffusion chain need so many steps?"], "p3": ["Is the Dirichlet prior tuned?"]}
    result = specificity(PAPERS, {"generic": {pid: GENERIC for pid in PAPERS},
                                  "shuffled": {"p1": humans["p2"][0], "p2": humans["p3"][0], "p3": humans["p1"][0]}},
                         humans, resamples=200)
    rows = result["systems"]
    assert rows["generic"]["specificity"]["value"] == 0
    assert rows["shuffled"]["specificity"]["value"] == 0  # the right words, of another paper
    assert rows[HUMANS]["specificity"]["value"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    text = "\n".join(markdown_lines(result))
    assert "| generic | 3 | 0%" in text and f"| {HUMANS} | 3 |" in text


def test_reviews_without_a_point_are_counted_not_scored_and_one_paper_is_refused():
    result = specificity(PAPERS, {"terse": {"p1": "Fine.", "p2": "Why does the diffusion chain need steps?"}}, {},
                         resamples=200)
    assert result["systems"]["terse"]["papers"] == 1 and result["systems"]["terse"]["without_points"] == ["p1"]
    with pytest.raises(UserError, match="at least two papers"):
        KeyTerms({"p1": PAPERS["p1"]})
    assert specificity({"p1": PAPERS["p1"]}, {}, {}) is None


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="the real PeerRead sample is not here")
def test_on_real_papers_human_reviews_are_specific_and_a_generic_or_misplaced_review_is_not():
    papers, humans = {}, {}
    for line in SHARED_DATA.read_text().splitlines():
        paper = json.loads(line)
        papers[paper["id"]], humans[paper["id"]] = paper["paper"], [r["text"] for r in paper["reviews"]]
    ids = list(papers)
    misplaced = {pid: humans[other][0] for pid, other in zip(ids, ids[1:] + ids[:1])}
    rows = specificity(papers, {"generic": {pid: GENERIC for pid in ids}, "misplaced": misplaced}, humans,
                       resamples=200)["systems"]
    human, generic, other = (rows[name]["specificity"]["value"] for name in (HUMANS, "generic", "misplaced"))
    assert human > 0.5 and generic < 0.1 and other < 0.1 and np.isfinite(human)
