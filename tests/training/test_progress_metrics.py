"""The metrics beside our progress bars leave out ``v_num`` (the logger's version, shown as ``v_num: 0.000`` on
Lightning's Rich bar in every fit), as Lightning's ProgressBar docs show: ``get_metrics`` pops it. Lightning's own
bars still show it, so the fit below does log a version."""

import lightning as L
import pytest
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import CSVLogger

from lightning_review.training.progress import ReviewRichProgressBar, ReviewTQDMProgressBar, use_review_progress_bar


class Boring(BoringModel):
    """A tiny module that installs the bar as LongQLoRAModule.configure_callbacks does."""

    def configure_callbacks(self):
        use_review_progress_bar(self.trainer)
        return []


@pytest.mark.parametrize("lightnings, ours", [(RichProgressBar, ReviewRichProgressBar),
                                             (TQDMProgressBar, ReviewTQDMProgressBar)], ids=["rich", "tqdm"])
def test_the_bar_shows_no_v_num(tmp_path, capsys, lightnings, ours):
    bar = lightnings()
    module = Boring()
    trainer = L.Trainer(default_root_dir=tmp_path, logger=CSVLogger(tmp_path), max_steps=2, limit_train_batches=2,
                        limit_val_batches=0, enable_checkpointing=False, enable_model_summary=False, callbacks=[bar])
    trainer.fit(module)
    out = capsys.readouterr()
    assert type(trainer.progress_bar_callback) is ours
    items = trainer.progress_bar_callback.get_metrics(trainer, module)
    assert "v_num" not in items and items.get("step") == "2/2", items
    # Lightning's own bar, for the same run, would have shown it
    assert "v_num" in lightnings.get_metrics(bar, trainer, module)
    assert "v_num" not in out.out + out.err and "2/2" in out.out + out.err
