"""A torchmetrics Metric for review quality inside a Lightning loop: generated reviews scored against the human ones
by the offline judge (hits at a threshold, precision and recall over points), summed over batches and processes."""

from __future__ import annotations

from typing import Sequence

import torch
from torchmetrics import Metric


class ReviewHitRate(Metric):
    """``update(generated, human)`` with lists of review texts; ``compute()`` returns recall (hits per human point,
    the hit rate), precision (hits per generated point) and mean hits per review.

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

    def update(self, generated: Sequence[str], human: Sequence[str]) -> None:
        if len(generated) != len(human):
            raise ValueError(f"{len(generated)} generated reviews for {len(human)} human ones")
        for system_review, human_review in zip(generated, human):
            a, b = self.judge.extract_points(system_review), self.judge.extract_points(human_review)
            self.hits += sum(m.similarity >= self.threshold for m in self.judge.match(a, b))
            self.system_points += len(a)
            self.human_points += len(b)
            self.reviews += 1

    def compute(self) -> dict[str, torch.Tensor]:
        return {"recall": self.hits / self.human_points.clamp(min=1),
                "precision": self.hits / self.system_points.clamp(min=1),
                "hits_per_review": self.hits / self.reviews.clamp(min=1)}
