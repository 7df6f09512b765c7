"""Lightning's progress bars, saying how far a run is by what bounds it.

A run bounded by ``trainer.max_steps`` (configs/demo.yaml: 40 steps; ``max_epochs`` then is -1, no bound) showed
``Epoch 0/-2`` on Lightning's RichProgressBar (the default wherever ``rich`` is installed), which writes
``Epoch {epoch}/{max_epochs - 1}`` whatever ``max_epochs`` is, and nothing about the steps on either bar. Here:

- the training description is ``Epoch N`` when the epochs are not bounded, Lightning's ``Epoch N/M`` when they are;
- the metrics beside the bar include ``step``, the optimizer steps done out of ``max_steps`` (``12/40``) whenever
  ``max_steps`` bounds the run;
- no ``v_num`` (the logger's version, ``v_num: 0.000`` on the Rich bar) among those metrics.

``LongQLoRAModule.configure_callbacks`` switches Lightning's own bar to ours of the same kind, in place (its
settings kept: refresh rate, theme, ...); a bar of the user's own class is left alone, as is a run without a bar.
"""

from __future__ import annotations

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


class ReviewRichProgressBar(_StepMetric, RichProgressBar):
    """RichProgressBar with ``Epoch N`` (no bound) instead of ``Epoch N/-2`` when the epochs are not bounded, and the
    step count beside the bar."""

    def _get_train_description(self, current_epoch: int) -> str:
        # Lightning 2.6's one builder of this text, used at each epoch's start and when a run resumed mid-epoch
        # creates the bar at its first batch; tests/test_demo_progress.py reads the bar a fit prints, so a
        # Lightning release that renames it fails there.
        if epochs_bounded(self.trainer):
            return super()._get_train_description(current_epoch)
        description = f"Epoch {current_epoch}"
        # Lightning pads it to the validation bar's description, so that the bars do not flicker
        return f"{description:{len(self.validation_description)}}"


class ReviewTQDMProgressBar(_StepMetric, TQDMProgressBar):
    """TQDMProgressBar (``Epoch N`` already) with the step count beside the bar."""


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
