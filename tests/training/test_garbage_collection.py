"""FrozenGarbageCollection (lightning_review.training.garbage_collection): the objects alive at train start frozen
during training and unfrozen when fit returns or raises; LongQLoRAModule adds it unless ``freeze_gc=False``."""

import gc

import lightning as L
import pytest
import torch

from lightning_review import LongQLoRAModule
from lightning_review.training.garbage_collection import FrozenGarbageCollection


class Tiny(L.LightningModule):
    def __init__(self, fail_at: int | None = None):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.fail_at = fail_at
        self.freeze_counts: list[int] = []

    def training_step(self, batch, batch_idx):
        self.freeze_counts.append(gc.get_freeze_count())
        if batch_idx == self.fail_at:
            raise RuntimeError("boom")
        return self.layer(batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(module: L.LightningModule, callbacks: list) -> None:
    trainer = L.Trainer(accelerator="cpu", max_steps=3, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(torch.randn(8, 4), batch_size=2))


@pytest.fixture(autouse=True)
def nothing_frozen():
    gc.unfreeze()  # what an earlier test may have left, so that each count here is this test's
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


def test_frozen_while_training_and_unfrozen_after_fit():
    module = Tiny()
    fit(module, [FrozenGarbageCollection()])
    assert len(module.freeze_counts) == 3 and all(count > 0 for count in module.freeze_counts), module.freeze_counts
    assert gc.get_freeze_count() == 0


def test_nothing_frozen_without_the_callback():
    module = Tiny()
    fit(module, [])
    assert module.freeze_counts == [0, 0, 0]


def test_unfrozen_after_a_fit_that_raises():
    module = Tiny(fail_at=1)
    with pytest.raises(RuntimeError, match="boom"):
        fit(module, [FrozenGarbageCollection()])
    assert module.freeze_counts[-1] > 0  # it was frozen when the step raised
    assert gc.get_freeze_count() == 0


def test_a_second_fit_freezes_again_from_nothing():
    first, second = Tiny(), Tiny()
    fit(first, [FrozenGarbageCollection()])
    fit(second, [FrozenGarbageCollection()])
    assert gc.get_freeze_count() == 0 and all(count > 0 for count in second.freeze_counts)


@pytest.mark.parametrize("settings, expected", [({}, True), ({"freeze_gc": False}, False)])
def test_the_module_adds_the_callback_unless_freeze_gc_is_off(tiny_llama_dir, settings, expected):
    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=8, max_seq_length=256, **settings)
    module.trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    callbacks = module.configure_callbacks()
    assert any(isinstance(c, FrozenGarbageCollection) for c in callbacks) == expected
    assert module.hparams.freeze_gc == expected


def test_the_module_keeps_the_validation_reviews_callback(tiny_llama_dir):
    from lightning_review.training.validation_reviews import ValidationReviews

    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), lora_r=8, max_seq_length=256, review_samples=2)
    module.trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    assert [type(c) for c in module.configure_callbacks()] == [ValidationReviews, FrozenGarbageCollection]


def test_a_resume_may_switch_freeze_gc():
    from lightning_review.training.module import model_setting_differences

    assert model_setting_differences({"lora_r": 8, "freeze_gc": True}, {"lora_r": 8, "freeze_gc": False}) == []


class FailsBeforeTraining(Tiny):
    def configure_optimizers(self):
        raise RuntimeError("no optimizer")


def test_a_fit_that_fails_before_train_start_leaves_the_callers_freeze_alone():
    """Only what this callback froze is unfrozen: a caller's own freeze survives a fit that never started training."""
    gc.freeze()
    frozen = gc.get_freeze_count()
    with pytest.raises(RuntimeError, match="no optimizer"):
        fit(FailsBeforeTraining(), [FrozenGarbageCollection()])
    assert gc.get_freeze_count() > frozen // 2 > 0  # (objects frozen may still be freed by reference counting)


def test_garbage_already_made_is_collected_before_the_freeze():
    """A cycle that is garbage at train start is freed, not frozen for the whole run."""
    import weakref

    class Node:
        pass

    node = Node()
    node.self = node  # a reference cycle: only the collector frees it
    ref = weakref.ref(node)
    del node
    module = Tiny()
    fit(module, [FrozenGarbageCollection()])
    assert ref() is None
