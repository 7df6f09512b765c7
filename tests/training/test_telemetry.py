"""Telemetry: the FLOPs formula on real Llama-2 shapes, and the metrics a run writes to TensorBoard."""

import lightning as L
import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from transformers import LlamaConfig

from lightning_review import LongQLoRAModule, ReviewDataModule
from lightning_review.training.telemetry import TrainingTelemetry, llama_matmul_parameters, training_flops

LLAMA2_7B = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                        num_key_value_heads=32, vocab_size=32000)


def test_matmul_parameters_of_llama2_7b():
    # 6,738,415,616 parameters in all, less the input embedding (131,072,000) and the 65 norms (266,240).
    assert llama_matmul_parameters(LLAMA2_7B) == 6_738_415_616 - 131_072_000 - 266_240


def test_training_flops_counts_attention_per_document():
    one = training_flops(LLAMA2_7B, [[8192]])
    four = training_flops(LLAMA2_7B, [[2048] * 4])
    attention_one = 3.5 * 2 * 8192**2 * 4096 * 32
    assert one - four == pytest.approx(attention_one * (1 - 4 / 16))
    assert four == pytest.approx(6 * llama_matmul_parameters(LLAMA2_7B) * 8192 + attention_one / 4)


class RecordTokens(L.Callback):
    def __init__(self):
        self.real = self.slots = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.real += sum(map(sum, batch["doc_lens"]))
        self.slots += batch["input_ids"].numel()


def test_fit_logs_throughput_packing_and_lr(tiny_llama_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=512, batch_size=2)
    model = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), model_max_length=512, lora_r=4, max_seq_length=512)
    seen = RecordTokens()
    trainer = L.Trainer(accelerator="cpu", max_steps=4, log_every_n_steps=4, limit_val_batches=0,
                        enable_progress_bar=False, enable_checkpointing=False,
                        logger=TensorBoardLogger(tmp_path), callbacks=[TrainingTelemetry(peak_tflops=1.0), seen])
    trainer.fit(model, datamodule=data)
    events = EventAccumulator(str(next(tmp_path.rglob("events.out.tfevents.*")))).Reload()
    values = {tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"]}
    assert values["perf/packing_efficiency"] == pytest.approx(seen.real / seen.slots, rel=1e-6)
    assert values["perf/tokens_per_sec"] > 0 and 0 < values["perf/mfu"] < 1
    assert values["lr"] == pytest.approx(2e-4)
