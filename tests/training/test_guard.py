"""A NaN loss stops the run before it is checkpointed; an out-of-memory error names the knobs that decide memory."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_review import LongQLoRAModule, ReviewDataModule
from lightning_review.training.guard import NonFiniteLossError, TrainingGuard


class NaNAtStep(LongQLoRAModule):
    def forward(self, batch):
        loss = super().forward(batch)
        return loss * float("nan") if self.global_step == 2 else loss


class OutOfMemoryAtStep(LongQLoRAModule):
    def training_step(self, batch, batch_idx):
        if self.global_step == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return super().training_step(batch, batch_idx)


def fit(module_cls, tiny_llama_dir, root):
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=256, batch_size=2)
    model = module_cls(checkpoint_dir=str(tiny_llama_dir), lora_r=4, max_seq_length=256)
    trainer = L.Trainer(accelerator="cpu", max_steps=5, logger=False, enable_progress_bar=False, limit_val_batches=0,
                        callbacks=[TrainingGuard(), ModelCheckpoint(dirpath=root, every_n_train_steps=1,
                                                                    save_top_k=-1)])
    trainer.fit(model, datamodule=data)


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tiny_llama_dir, tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at global step 3 .*step=2.ckpt"):
        fit(NaNAtStep, tiny_llama_dir, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["epoch=0-step=1.ckpt", "epoch=0-step=2.ckpt"]


def test_out_of_memory_error_lists_the_memory_knobs_with_their_values(tiny_llama_dir, tmp_path):
    with pytest.raises(torch.OutOfMemoryError) as info:
        fit(OutOfMemoryAtStep, tiny_llama_dir, tmp_path)
    advice = "\n".join(info.value.__notes__)
    for knob in ("data.batch_size=2", "data.max_seq_length=256", "model.gradient_checkpointing=True",
                 "model.s2_group_size=64", "offload_optimizer", "trainer.accumulate_grad_batches"):
        assert knob in advice
