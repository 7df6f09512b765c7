"""Throughput telemetry: real tokens per second, model FLOPs utilisation, peak GPU memory, packing efficiency, lr.

MFU uses *model* FLOPs (PaLM's convention), so recomputation by gradient checkpointing does not inflate it:
    6 x P x T                       the matmuls of forward + backward (P: parameters of every linear layer including
                                    the LM head; the embedding lookup is no matmul; T: real tokens, padding excluded)
  + 3.5 x 2 x n^2 x hidden x layers for each document of n tokens: causal attention's forward is 2 n^2 hidden per
                                    layer, forward + backward 3.5 times that (flash attention's recomputing backward)
over the bf16 dense peak of the device. The attention term counts full causal attention even when S2-Attn computes
less, so a faster attention shows as higher utilisation of the same model work (comparable with the baseline).
"""

from __future__ import annotations

import time
from typing import Sequence

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

# Dense bf16 matmul peaks we measured (benchmarks/peak_flops.py: 8192^3 bf16 matmuls, triton do_bench), by device
# name substring. H200: 669, 677 and 680 TFLOP/s in three runs on 2026-11-29 (benchmarks/results/deepspeed_7b_*.json).
MEASURED_BF16_PEAK_TFLOPS: dict[str, float] = {"H200": 677.0}


def llama_matmul_parameters(config) -> int:
    """Parameters that take part in matmuls per token: every decoder linear layer and the LM head."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    q_dim = config.num_attention_heads * head_dim
    kv_dim = config.num_key_value_heads * head_dim
    per_layer = hidden * q_dim + 2 * hidden * kv_dim + q_dim * hidden + 3 * hidden * config.intermediate_size
    return layers * per_layer + config.vocab_size * hidden


def training_flops(config, doc_lens: Sequence[Sequence[int]]) -> float:
    """Model FLOPs of forward + backward over one batch of packed rows (formula in the module docstring)."""
    tokens = sum(sum(row) for row in doc_lens)
    attention = sum(n * n for row in doc_lens for n in row)
    return (6.0 * llama_matmul_parameters(config) * tokens
            + 3.5 * 2.0 * attention * config.hidden_size * config.num_hidden_layers)


def device_peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in MEASURED_BF16_PEAK_TFLOPS.items() if key in name), None)


class TrainingTelemetry(L.Callback):
    """Every ``log_every_n_steps`` optimizer steps: throughput, MFU, peak memory and packing, to the loggers
    (TensorBoard by default) under ``perf/`` and to the progress bar.

    Args:
        peak_tflops: the device's dense bf16 peak in TFLOP/s for MFU; None looks the device up in
            MEASURED_BF16_PEAK_TFLOPS (MFU is left out on a device we have not measured).
    """

    def __init__(self, peak_tflops: float | None = None):
        self.peak_tflops = peak_tflops
        self._config = None
        self._reset_window()
        self._bar: dict[str, float] = {}

    def _reset_window(self) -> None:
        self._tokens = self._slots = 0
        self._flops = 0.0
        self._start = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = getattr(pl_module, "model", None)
        self._config = getattr(model, "config", None)
        if self.peak_tflops is None:
            self.peak_tflops = device_peak_tflops(pl_module.device)
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)
        self._reset_window()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        doc_lens = batch["doc_lens"]
        self._tokens += sum(sum(row) for row in doc_lens)
        self._slots += batch["input_ids"].numel()
        if self._config is not None:
            self._flops += training_flops(self._config, doc_lens)
        stepped = not trainer.fit_loop._should_accumulate()
        if stepped and trainer.global_step % max(1, trainer.log_every_n_steps) == 0:
            self._log(trainer, pl_module)
        for name, value in self._bar.items():  # Lightning's progress bar shows the latest value of each
            pl_module.log(name, value, prog_bar=True, logger=False, on_step=True, on_epoch=False, batch_size=1)

    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        device = pl_module.device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = max(time.perf_counter() - self._start, 1e-9)
        per_device = self._tokens / seconds
        total = float(trainer.strategy.reduce(torch.tensor(per_device, device=device), reduce_op="sum")) \
            if trainer.world_size > 1 else per_device
        metrics = {"perf/tokens_per_sec": total, "perf/tokens_per_sec_per_device": per_device,
                   "perf/packing_efficiency": self._tokens / max(self._slots, 1)}
        if self.peak_tflops and self._flops:
            metrics["perf/mfu"] = self._flops / seconds / (self.peak_tflops * 1e12)
        if device.type == "cuda":
            metrics["perf/peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
            metrics["perf/peak_reserved_gb"] = torch.cuda.max_memory_reserved(device) / 2**30
        if trainer.optimizers:
            metrics["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        self._write(trainer, metrics)
        self._bar = {"tok/s": total, "lr": metrics.get("lr", 0.0)}
        if "perf/mfu" in metrics:
            self._bar["mfu"] = metrics["perf/mfu"]
        if "perf/peak_memory_gb" in metrics:
            self._bar["mem_gb"] = metrics["perf/peak_memory_gb"]
        self.last_metrics = metrics
        self._reset_window()

    @rank_zero_only
    def _write(self, trainer: L.Trainer, metrics: dict) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
