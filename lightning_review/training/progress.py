"""Lightning's progress bars, saying how far a run is by what bounds it.

A run bounded by ``trainer.max_steps`` (configs/demo.yaml: 40 steps; ``max_epochs`` then is -1, no bound) showed
``Epoch 0/-2`` on Lightning's RichProgressBar (the default wherever ``rich`` is installed), which writes
``Epoch {epoch}/{max_epochs - 1}`` whatever ``max_epochs`` is, and nothing about the steps on either bar. Here:

- the training description is ``Epoch N`` when the epochs are not bounded, Lightning's ``Epoch N/M`` when they are;
- the metrics beside the bar include ``step``, the optimizer steps done out of ``max_steps`` (``12/40``) whenever
  ``max_steps`` bounds the run;
- no ``v_num`` (the logger's version, ``v_num: 0.000`` on the Rich bar) among those metrics;
- the count of batches is the place in the epoch out of the batch where the epoch's training stops (its last batch,
  or sooner the one of the ``max_steps``-th optimizer step), on a run resumed mid-epoch too. Lightning's bars count
  the place in the epoch (``batch_idx + 1``) out of the steps *left* (``max_steps - global_step``) when
  ``max_epochs`` is -1: a resume at step 30 of 40 inside one long epoch showed ``40/9`` at the end (the total taken
  at the first batch after the resume), and the TQDM bar no total at all (Lightning calls no ``on_train_epoch_start``
  on a mid-epoch resume, where it sets one). Lightning's count also ignores ``accumulate_grad_batches``.

``LongQLoRAModule.configure_callbacks`` switches Lightning's own bar to ours of the same kind, in place (its
settings kept: refresh rate, theme, ...); a bar of the user's own class is left alone, as is a run without a bar.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar


def step_progress(trainer: L.Trainer) -> str | None:
    """``done/max_steps`` (optimizer steps) when ``max_steps`` bounds the run being fitted, else None."""
    if trainer.max_steps is None or trainer.max_steps < 0 or trainer.state.fn != "fit":
        return None
    return f"{trainer.global_step}/{trainer.max_steps}"


def epochs_bounded(trainer: L.Trainer) -> bool:
    """Whether ``max_epochs`` bounds the run: Lightning sets it to -1 when only ``max_steps`` does."""
    return trainer.max_epochs is not None and trainer.max_epochs >= 0


def epoch_stop(trainer: L.Trainer, batches_done: int) -> int | float:
    """The batch of the current epoch (counted from 1) after which training stops, when ``batches_done`` of its
    batches are done: the epoch's last, or sooner the one whose optimizer step is the ``max_steps``-th. Lightning
    steps after every ``accumulate_grad_batches``-th batch of the epoch (and after its last one)."""
    batches = trainer.num_training_batches  # inf for a loader without a length
    if trainer.max_steps is None or trainer.max_steps < 0 or trainer.state.fn != "fit":
        return batches
    steps_left = max(0, trainer.max_steps - trainer.global_step)
    if steps_left == 0:
        return min(batches, batches_done)
    accumulate = trainer.accumulate_grad_batches
    # the batches that finish the step under way (if any), then `accumulate` for each further step
    return min(batches, batches_done - batches_done % accumulate + steps_left * accumulate)


class _EpochPosition:
    """The train bar's total as ``epoch_stop``: Lightning's documented hook for the bar's total,
    ``total_train_batches``, read by Lightning's bars at each epoch's start (and by the Rich bar at the first batch
    after a mid-epoch resume); set again at each batch's end, before the bar draws it."""

    _batches_done = 0  # the bar's place in the epoch; a class default, so that a bar switched in place needs no setup

    @property
    def total_train_batches(self) -> int | float:
        return epoch_stop(self.trainer, self._batches_done)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._batches_done = 0
        super().on_train_epoch_start(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batches_done = batch_idx + 1
        self._set_train_total(self.total_train_batches, batch_idx)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _set_train_total(self, total: int | float, batch_idx: int) -> None:
        raise NotImplementedError


class _StepMetric:
    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Lightning's items less ``v_num`` (popped as Lightning's ProgressBar docs show), and ``step``
        (done/max_steps) when ``max_steps`` bounds the run (Lightning's documented hook for the items beside the
        bar)."""
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        steps = step_progress(trainer)
        if steps is not None:
            items.setdefault("step", steps)
        return items


class ReviewRichProgressBar(_EpochPosition, _StepMetric, RichProgressBar):
    """RichProgressBar with ``Epoch N`` (no bound) instead of ``Epoch N/-2`` when the epochs are not bounded, the
    step count beside the bar, and the place in the epoch out of where its training stops."""

    def _set_train_total(self, total: int | float, batch_idx: int) -> None:
        """The task's total, when it exists (after a mid-epoch resume Lightning creates it at the first batch's end,
        from ``total_train_batches``); Rich's speed leaves out the first jump to the resumed place by itself."""
        if self.progress is not None and self.train_progress_bar_id is not None:
            self.progress.update(self.train_progress_bar_id, total=total)

    def _get_train_description(self, current_epoch: int) -> str:
        # Lightning 2.6's one builder of this text, used at each epoch's start and when a run resumed mid-epoch
        # creates the bar at its first batch; tests/test_demo_progress.py reads the bar a fit prints, so a
        # Lightning release that renames it fails there.
        if epochs_bounded(self.trainer):
            return super()._get_train_description(current_epoch)
        description = f"Epoch {current_epoch}"
        # Lightning pads it to the validation bar's description, so that the bars do not flicker
        return f"{description:{len(self.validation_description)}}"


class ReviewTQDMProgressBar(_EpochPosition, _StepMetric, TQDMProgressBar):
    """TQDMProgressBar (``Epoch N`` already) with the step count beside the bar, and the place in the epoch out of
    where its training stops."""

    def _set_train_total(self, total: int | float, batch_idx: int) -> None:
        """The bar's total; and, at the first batch after a mid-epoch resume, the batches done before it as tqdm's
        ``initial``, so that its rate and time left count this run's batches only."""
        bar = self.train_progress_bar
        bar.total = None if math.isinf(total) else total  # tqdm's "no total"
        if bar.n == 0 and bar.initial == 0 and batch_idx > 0:
            bar.initial = batch_idx


OURS = {RichProgressBar: ReviewRichProgressBar, TQDMProgressBar: ReviewTQDMProgressBar}


def use_review_progress_bar(trainer: L.Trainer) -> bool:
    """Switch the trainer's progress bar to ours in place when it is one of Lightning's own (the default one, or one
    configured with its own settings, which stay: same object, our class, no state added); a bar of the user's own
    class, or none, is left alone. In place rather than returned from ``configure_callbacks``, whose replacement of
    a Trainer callback Lightning announces on every fit. Returns whether it switched."""
    bar = trainer.progress_bar_callback
    ours = OURS.get(type(bar))
    if ours is None:
        return False
    bar.__class__ = ours  # before fit draws anything: only its settings exist yet
    return True
