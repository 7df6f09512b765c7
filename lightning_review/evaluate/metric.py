"""torchmetrics Metrics for review quality inside a Lightning loop, summed over batches and processes: generated
reviews scored against the human ones by the offline judge (hits at a threshold, precision and recall over points),
and the rating each generated review states against the human rating (no judge)."""

from __future__ import annotations

from typing import Sequence

import torch
from torchmetrics import Metric

from ..data.rating_line import parse_rating
from .statistics import hits


class ReviewHitRate(Metric):
    """``update(generated, human, papers)`` with lists of review texts (and the reviewed papers); ``compute()``
    returns recall (hits per human point, the hit rate), precision (hits per generated point) and mean hits per
    review.

    Args:
        judge: an object with ``extract_points`` and ``match`` (lightning_review.evaluate.embedding_judge).
        threshold: similarity on the 5-10 scale at or above which a matched pair is a hit.
    """

    full_state_update = False

    def __init__(self, judge, threshold: float = 7.0, **kwargs):
        super().__init__(**kwargs)
        self.judge, self.threshold = judge, threshold
        for name in ("hits", "system_points", "human_points", "reviews"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, generated: Sequence[str], human: Sequence[str], papers: Sequence[str] | None = None) -> None:
        """``papers``: the reviewed papers, one a review, so that a judge that uses the paper (``uses_paper``) leaves
        restatements of it out, as ``evaluate`` does; without them a copy of the paper scores as a review would."""
        if len(generated) != len(human):
            raise ValueError(f"{len(generated)} generated reviews for {len(human)} human ones")
        if papers is not None and len(papers) != len(generated):
            raise ValueError(f"{len(papers)} papers for {len(generated)} generated reviews")
        with_paper = papers is not None and getattr(self.judge, "uses_paper", False)
        for k, (system_review, human_review) in enumerate(zip(generated, human)):
            if with_paper:
                a = self.judge.extract_points(system_review, paper=papers[k])
                b = self.judge.extract_points(human_review, paper=papers[k])
            else:
                a, b = self.judge.extract_points(system_review), self.judge.extract_points(human_review)
            self.hits += hits([m.similarity for m in self.judge.match(a, b)], self.threshold)
            self.system_points += len(a)
            self.human_points += len(b)
            self.reviews += 1

    def compute(self) -> dict[str, torch.Tensor]:
        return {"recall": self.hits / self.human_points.clamp(min=1),
                "precision": self.hits / self.system_points.clamp(min=1),
                "hits_per_review": self.hits / self.reviews.clamp(min=1)}


class RatingError(Metric):
    """``update(generated, ratings)`` with review texts and the human ratings of the same records; ``compute()``
    returns ``rating_mae``, the mean absolute error of the rating each review states on its ``Rating: <n>`` line
    (lightning_review.data.rating_line; NaN when no review states one) and ``rating_missing``, the share of reviews
    that state none (a model that has not learnt the line yet shows here, not as a flattering error)."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("absolute_error", "rated", "reviews"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, generated: Sequence[str], ratings: Sequence[float]) -> None:
        if len(generated) != len(ratings):
            raise ValueError(f"{len(generated)} generated reviews for {len(ratings)} ratings")
        for review, human in zip(generated, ratings):
            stated = parse_rating(review)
            if stated is not None:
                self.absolute_error += abs(stated - float(human))
                self.rated += 1
            self.reviews += 1

    def compute(self) -> dict[str, torch.Tensor]:
        mae = self.absolute_error / self.rated if self.rated > 0 else torch.tensor(float("nan"), dtype=torch.float64)
        return {"rating_mae": mae, "rating_missing": 1 - self.rated / self.reviews.clamp(min=1)}
