"""The train bar of a run resumed mid-epoch says the place in the epoch out of the batch where its training stops.

Lightning's bars count ``batch_idx + 1`` (the place in the epoch) out of ``max_steps - global_step`` (the steps left,
taken when the bar's task is made: at the first batch after the resume): the demo resumed at step 30 of 40 showed
``40/9`` at its end; TQDM had no total at all (no ``on_train_epoch_start`` on a mid-epoch resume)."""

import lightning as L
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar, TQDMProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_review import LongQLoRAModule, ReviewDataModule
from lightning_review.training.progress import use_review_progress_bar


def train_counts(bar) -> tuple[float, float | None]:
    """(batches done, total) as the bar shows them."""
    if isinstance(bar, RichProgressBar):
        task = bar.progress.tasks[bar.train_progress_bar_id]
        return task.completed, task.total
    return bar.train_progress_bar.n, bar.train_progress_bar.total


class RecordBar(L.Callback):
    """The bar's counts before each batch (Lightning calls the bar after the user's callbacks) and at the end."""

    def __init__(self):
        self.counts = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        bar = trainer.progress_bar_callback
        if isinstance(bar, TQDMProgressBar) or bar.train_progress_bar_id is not None:
            self.counts.append(train_counts(bar))

    def on_train_end(self, trainer, pl_module):
        self.counts.append(train_counts(trainer.progress_bar_callback))


def llama_run(tiny_llama_dir, root, max_steps, callbacks, ckpt_path=None):
    """A fit of the tiny Llama on the resumable data module (as tests/training/test_resume.py's), with a bar."""
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=256, batch_size=2, val_fraction=0.1,
                            seed=7)
    model = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=4, max_seq_length=256, s2_group_size=32,
                            warmup_steps=2, learning_rate=1e-3)
    checkpoint = ModelCheckpoint(dirpath=root, every_n_train_steps=2, save_top_k=-1)
    trainer = L.Trainer(accelerator="cpu", max_steps=max_steps, logger=False, limit_val_batches=0,
                        callbacks=[checkpoint, *callbacks], default_root_dir=root, enable_model_summary=False)
    L.seed_everything(0)
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    return trainer


def test_a_resumed_llama_run_shows_its_place_in_the_epoch_out_of_where_it_stops(tiny_llama_dir, tmp_path, capsys):
    llama_run(tiny_llama_dir, tmp_path, 2, [])
    record = RecordBar()
    trainer = llama_run(tiny_llama_dir, tmp_path, 5, [RichProgressBar(), record],
                        ckpt_path=str(tmp_path / "epoch=0-step=2.ckpt"))
    assert trainer.global_step == 5 and trainer.num_training_batches >= 5  # one epoch, resumed at its batch 2
    # was (3, 2), (4, 2), (5, 2): the place in the epoch out of the steps left after the first batch
    assert record.counts == [(3, 5), (4, 5), (5, 5)]
    assert "5/5" in capsys.readouterr().out


class Boring(BoringModel):
    """32 batches an epoch; installs our bar as LongQLoRAModule.configure_callbacks does."""

    def configure_callbacks(self):
        use_review_progress_bar(self.trainer)
        return []


def boring_fit(root, bar, ckpt_path=None, **settings):
    record = RecordBar()
    trainer = L.Trainer(default_root_dir=root, limit_val_batches=0, logger=False, enable_model_summary=False,
                        callbacks=[bar, record, ModelCheckpoint(dirpath=root, every_n_train_steps=4, save_top_k=-1)],
                        **settings)
    trainer.fit(Boring(), ckpt_path=ckpt_path)  # BoringModel's loader is not resumable: Lightning warns, restarts it
    return trainer, record.counts


@pytest.mark.parametrize("bar", [RichProgressBar, TQDMProgressBar])
def test_a_resumed_run_counts_to_where_its_epoch_stops(tmp_path, bar):
    boring_fit(tmp_path, bar(), max_steps=4)
    trainer, counts = boring_fit(tmp_path, bar(), ckpt_path=str(tmp_path / "epoch=0-step=4.ckpt"), max_steps=7)
    assert trainer.global_step == 7
    assert counts[-1] == (7, 7)
    if bar is TQDMProgressBar:  # its rate counts this run's batches: tqdm's initial is the resumed place
        assert trainer.progress_bar_callback.train_progress_bar.initial == 4


def test_the_count_stops_where_the_accumulated_steps_do(tmp_path):
    """max_steps 3 with 2 batches a step: the epoch's training stops at its 6th batch (Lightning said 3)."""
    trainer, counts = boring_fit(tmp_path, RichProgressBar(), max_steps=3, accumulate_grad_batches=2)
    assert trainer.global_step == 3
    assert counts == [(0, 6), (1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]
