"""The progress bar of a run bounded by max_steps (the demo: max_steps 40, so Lightning's max_epochs is -1) says the
epoch and the steps done out of max_steps, not ``Epoch 0/-2``; a run bounded by epochs keeps Lightning's
``Epoch N/M``; a bar of the user's own class, or none, is left as it is. The demo config's own bar (through
LongQLoRAModule.configure_callbacks) is checked by tests/test_prepare.py's fit."""

import re

import lightning as L
import pytest
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_review.training.progress import ReviewRichProgressBar, ReviewTQDMProgressBar, use_review_progress_bar


class Boring(BoringModel):
    """A tiny module that installs the bar as LongQLoRAModule.configure_callbacks does."""

    def configure_callbacks(self):
        use_review_progress_bar(self.trainer)
        return []


def fit(tmp_path, capsys, **trainer_settings) -> tuple[L.Trainer, str]:
    trainer = L.Trainer(default_root_dir=tmp_path, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_model_summary=False, **trainer_settings)
    trainer.fit(Boring())
    out = capsys.readouterr()
    return trainer, out.out + out.err


@pytest.mark.parametrize("bar", [None, TQDMProgressBar(refresh_rate=2), RichProgressBar(leave=True)],
                         ids=["default", "tqdm", "rich"])
def test_a_step_bounded_fit_shows_the_epoch_and_the_steps(tmp_path, capsys, caplog, bar):
    trainer, out = fit(tmp_path, capsys, max_steps=4, limit_train_batches=3, callbacks=[bar] if bar else [])
    assert trainer.max_epochs == -1 and trainer.global_step == 4  # two epochs: 3 steps, then 1
    assert "/-2" not in out and "Epoch 0/" not in out, out
    assert re.search(r"Epoch 1\b", out), out
    assert re.search(r"step[:=] ?4/4", out), out
    ours = trainer.progress_bar_callback
    assert isinstance(ours, (ReviewRichProgressBar, ReviewTQDMProgressBar))
    assert "will override existing callbacks" not in out + caplog.text  # switched in place: no notice
    if bar is not None:  # the user's bar and its settings are kept
        assert ours is bar and (ours.refresh_rate == 2 if isinstance(bar, TQDMProgressBar) else ours._leave)


def test_an_epoch_bounded_fit_keeps_lightnings_description(tmp_path, capsys):
    trainer, out = fit(tmp_path, capsys, max_epochs=2, limit_train_batches=2)
    assert isinstance(trainer.progress_bar_callback, ReviewRichProgressBar)
    assert "Epoch 1/1" in out and "step" not in out, out


def test_no_bar_and_a_bar_of_the_users_own_class_are_left_alone(tmp_path, capsys):
    class MyBar(TQDMProgressBar):
        pass

    trainer, out = fit(tmp_path, capsys, max_steps=2, enable_progress_bar=False)
    assert trainer.progress_bar_callback is None and "Epoch" not in out
    trainer, _ = fit(tmp_path, capsys, max_steps=2, callbacks=[MyBar()])
    assert type(trainer.progress_bar_callback) is MyBar

