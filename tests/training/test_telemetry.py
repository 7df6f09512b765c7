"""Telemetry: the FLOPs formula on real Llama-2 shapes, and the exact metrics a run writes to TensorBoard (a clock
the test controls)."""

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from transformers import LlamaConfig, LlamaForCausalLM

from lightning_review import LongQLoRAModule, ReviewDataModule
from lightning_review.training import telemetry
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


class RecordBatches(L.Callback):
    """Each trained batch's document lengths (real tokens) and slots (tokens with padding)."""

    def __init__(self):
        self.doc_lens, self.slots = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.doc_lens.append([list(row) for row in batch["doc_lens"]])
        self.slots.append(batch["input_ids"].numel())


class TenSecondsPerReading:
    """Stands in for the telemetry module's ``time``: each reading of the clock is 10 s after the previous one, so a
    window (read at its start and when it is logged) lasts exactly 10 s."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 10.0
        return self.now


def matmul_parameters_counted(config) -> int:
    """Weights of every nn.Linear of the transformers model (decoder and LM head), counted on the meta device."""
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def test_fit_logs_exact_throughput_mfu_packing_and_lr(tiny_llama_dir, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setattr(telemetry, "time", TenSecondsPerReading())
    data = ReviewDataModule(tokenizer_dir=str(tiny_llama_dir), max_seq_length=512, batch_size=2)
    model = LongQLoRAModule(checkpoint_dir=str(tiny_llama_dir), model_max_length=512, lora_r=4, max_seq_length=512)
    seen = RecordBatches()
    trainer = L.Trainer(accelerator="cpu", max_steps=4, log_every_n_steps=2, limit_val_batches=0,
                        enable_progress_bar=False, enable_checkpointing=False,
                        logger=TensorBoardLogger(tmp_path), callbacks=[TrainingTelemetry(peak_tflops=2.0), seen])
    trainer.fit(model, datamodule=data)
    events = EventAccumulator(str(next(tmp_path.rglob("events.out.tfevents.*")))).Reload()
    logged = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}

    config = model.model.config
    params = matmul_parameters_counted(config)
    assert llama_matmul_parameters(config) == params
    for step, batches in ((2, slice(0, 2)), (4, slice(2, 4))):  # one window per log, each 10 s long
        docs = [n for batch in seen.doc_lens[batches] for row in batch for n in row]
        real, slots = sum(docs), sum(seen.slots[batches])
        assert real < slots  # the rows are padded: padding must not count
        flops = 6 * params * real + 3.5 * 2 * sum(n * n for n in docs) * config.hidden_size * config.num_hidden_layers
        assert logged["perf/tokens_per_sec"][step] == pytest.approx(real / 10, rel=1e-6)
        assert logged["perf/tokens_per_sec_per_device"][step] == pytest.approx(real / 10, rel=1e-6)
        assert logged["perf/packing_efficiency"][step] == pytest.approx(real / slots, rel=1e-6)
        assert logged["perf/mfu"][step] == pytest.approx(flops / 10 / 2.0e12, rel=1e-6)
    assert logged["lr"][4] == pytest.approx(2e-4)
