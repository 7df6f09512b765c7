"""Failures a long run meets, stopped early and explained: a non-finite loss, and running out of GPU memory."""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from ..errors import UserError


class NonFiniteLossError(UserError, RuntimeError):
    """The loss became NaN or infinite; the run stopped before any checkpoint could hold the bad weights. A
    UserError: its message says what to change, so the CLI shows it as one line, not a traceback."""


class TrainingGuard(L.Callback):
    """Stops at the first NaN or infinite loss, naming the step, before the checkpoint callback (which Lightning runs
    last) can save that state; adds the memory knobs to an out-of-memory error."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        bad = loss is not None and not bool(torch.isfinite(loss.detach()).all())
        if trainer.world_size > 1:  # every rank stops together, or the others would hang in the next all-reduce
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            raise NonFiniteLossError(
                f"the training loss is {float(loss) if loss is not None else 'non-finite on another rank'} at global "
                f"step {trainer.global_step} (epoch {trainer.current_epoch}, batch {batch_idx}); stopped before "
                "this state could be saved. "
                f"{last_checkpoint_hint(trainer)} {non_finite_advice(trainer)}")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, torch.OutOfMemoryError):
            message = out_of_memory_advice(trainer, pl_module)
            exception.add_note(message)
            rank_zero_warn(message)


def last_checkpoint_hint(trainer: L.Trainer) -> str:
    callback = trainer.checkpoint_callback
    path = getattr(callback, "last_model_path", "") or getattr(callback, "best_model_path", "")
    return f"The last good checkpoint is {path}." if path else "No checkpoint had been written yet."


def non_finite_advice(trainer: L.Trainer) -> str:
    """What to change after a non-finite loss: float16 weights without loss scaling first, where the run has them
    (trainer.precision 16-true, NaN within two steps of the CPU demo), then the learning rate; resume from the last
    checkpoint where there is one."""
    callback = trainer.checkpoint_callback
    saved = getattr(callback, "last_model_path", "") or getattr(callback, "best_model_path", "")
    then = "then resume from it with --ckpt_path" if saved else "then run again"
    if str(getattr(trainer, "precision", "")) == "16-true":
        return (f"trainer.precision=16-true trains in float16 without loss scaling, which overflows: use 32-true "
                f"(or bf16-mixed / 16-mixed on a GPU), {then}.")
    return (f"Lower model.learning_rate, raise model.warmup_steps or keep trainer.gradient_clip_val set, {then}.")


def out_of_memory_advice(trainer: L.Trainer, pl_module: L.LightningModule) -> str:
    """The knobs that decide memory, with this run's values, cheapest first."""
    hp = pl_module.hparams
    data = getattr(trainer.datamodule, "hparams", {}) if trainer.datamodule is not None else {}
    offload = getattr(trainer.strategy, "config", {}).get("zero_optimization", {}).get("offload_optimizer")
    lines = [
        f"Out of GPU memory at step {trainer.global_step}. What decides memory, with this run's values:",
        f"  data.batch_size={data.get('batch_size')}: rows per micro-batch; use 1 and raise "
        f"trainer.accumulate_grad_batches (now {trainer.accumulate_grad_batches}) to keep the tokens per step",
        f"  data.max_seq_length={data.get('max_seq_length', hp.get('max_seq_length'))}: tokens per row; activations "
        "grow with it",
        f"  model.gradient_checkpointing={hp.get('gradient_checkpointing')}: true recomputes activations instead of "
        "storing them",
        f"  model.s2_group_size={getattr(pl_module, 's2_group_size', None)}: smaller S2-Attn groups need less "
        "attention memory",
        f"  optimizer offload={'on' if offload else 'off'}: with DeepSpeed, trainer.strategy.init_args."
        "offload_optimizer=true moves Adam's state to host memory",
        "  more GPUs: ZeRO-2 (configs/13b.yaml) splits the optimizer state and gradients over them",
    ]
    return "\n".join(lines)
