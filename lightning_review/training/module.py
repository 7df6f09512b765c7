"""LongQLoRAModule: a 4-bit Llama with LoRA, trainable embeddings and norms, RoPE interpolation and S2-Attn."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping, get_args

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from ..artifacts.adapter_record import check_adapter_files, write_adapter_record
from ..artifacts.checkpoint_files import CheckpointError, read_llama_config
from ..artifacts.model_limits import MAX_SEQ_LENGTH, ROPE_POSITIONS
from ..artifacts.model_sources import TINY_LLAMA, resolve
from ..errors import UserError
from ..artifacts.settings_check import config_differences, parameter_defaults, refuse_config_change
from ..model.kernels import Kernels, resolve_kernels, use_liger_kernels
from ..model.loading import (add_lora, compute_dtype, decoder_layers, keep_trainable_in_fp32, load_llama,
                             peft_reading_checkpointing_flag, rope_scaling_factor)
from ..model.fused_lora import DropoutKernel, resolve_dropout_kernel, use_fused_lora
from ..model.lora_dropout import use_regenerated_lora_dropout
from ..model.loss import review_token_loss
from ..model.offload import enable_activation_offload
from .resume import restore_rng_states, save_rng_states
from .trainer_checks import check_val_check_interval

if TYPE_CHECKING:
    from ..generation.decoding import ReviewRoom

# Settings that may change when a run is resumed: how fast it runs or what predict writes, not what it learns.
# checkpoint_dir may point elsewhere (a moved copy), but the base model's architecture must be the same.
RESUMABLE_MODEL_SETTINGS = ("attention_backend", "gradient_checkpointing", "max_new_tokens", "checkpoint_dir",
                            "review_samples", "loss_chunk_tokens", "activation_offload", "checkpointed_layers",
                            "kernels", "regenerate_lora_dropout", "fused_lora", "lora_dropout_kernel",
                            "freeze_gc")
# setting -> (its test, the allowed values in words): checked when the module is built, the field named.
SETTING_RANGES = {
    "lora_r": (lambda v: v > 0, "> 0"),
    "lora_alpha": (lambda v: v > 0, "> 0"),
    "lora_dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "learning_rate": (lambda v: v > 0, "> 0"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "warmup_steps": (lambda v: v >= 0, ">= 0"),
    "max_seq_length": (lambda v: v > 0, "> 0"),
    # at most MAX_SEQ_LENGTH (2**24): RoPE takes positions as float32, exact whole numbers only up to there
    "model_max_length": (lambda v: v is None or 0 < v <= MAX_SEQ_LENGTH,
                         f"> 0 and at most {MAX_SEQ_LENGTH:,} (2**24: {ROPE_POSITIONS}, so further tokens would "
                         f"share a position's rotation), or null (no context extension)"),
    "s2_group_size": (lambda v: v is None or (v >= 2 and v % 2 == 0),
                      "an even number >= 2 (half a group is the shift), or null (a quarter of max_seq_length)"),
    "max_new_tokens": (lambda v: v > 0, "> 0"),
    "review_samples": (lambda v: v >= 0, ">= 0"),
    "loss_chunk_tokens": (lambda v: v is None or v > 0, "> 0, or null (transformers' loss on the full logits)"),
    "checkpointed_layers": (lambda v: v is None or v >= 0, ">= 0, or null (all layers)"),
}
BASE_MODEL_KEY = "lightning_review_base_model"
BASE_MODEL_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "vocab_size", "max_position_embeddings", "rope_parameters")


class LongQLoRAModule(L.LightningModule):
    """Fine-tunes any Hugging Face Llama checkpoint directory on paper->review batches (see ReviewDataModule).

    Args:
        checkpoint_dir: a Llama checkpoint directory (config.json, weights, tokenizer), or ``builtin:tiny-llama``.
        model_max_length: target context of the extension; RoPE is linearly interpolated by
            ceil(model_max_length / the checkpoint's max_position_embeddings). None: no extension.
        quantize: load the base weights as bitsandbytes 4-bit NF4 (double quantization, bf16 compute).
        lora_r, lora_alpha, lora_dropout: LoRA on every linear layer of the decoder (LongQLoRA: 64, 16, 0.05).
        train_embeddings_and_norms: LongLoRA's "+": embeddings and norms trainable, saved with the adapter.
        s2_attention: shifted sparse attention while training (full causal attention otherwise).
        s2_group_size: tokens per S2 group; None: a quarter of ``max_seq_length`` (LongLoRA).
        max_seq_length: tokens per row (the CLI links it to ``data.max_seq_length``); at most the model's context,
            its max_position_embeddings times the RoPE interpolation of ``model_max_length`` (refused otherwise).
        attention_backend: ``auto``, ``flex``, ``grouped``, ``varlen`` (CUDA) or ``reference``
            (lightning_review.model.attention).
        optimizer: ``auto``: under DeepSpeed, torch's fused AdamW (DeepSpeedCPUAdam when the optimizer is offloaded),
            as ZeRO keeps its own fp32 master weights; otherwise bitsandbytes' paged 32-bit AdamW on CUDA, torch AdamW
            on CPU.
        lr_scheduler: ``constant_with_warmup`` (LongQLoRA) or ``cosine`` (with warmup).
        adapter_dir: an adapter written by an earlier run, loaded (trainable) instead of a fresh LoRA.
        max_new_tokens: review length limit in ``predict`` and in validation reviews.
        review_samples: validation papers reviewed and scored by the offline judge at each validation (0: none),
            by the callback lightning_review.training.validation_reviews.ValidationReviews that this adds;
            logged as ``val_review_recall`` / ``val_review_precision`` / ``val_review_hits_per_review``.
        loss_chunk_tokens: logits only for the review tokens, this many at a time, recomputed in backward
            (lightning_review.model.loss); None: transformers' loss over the full logits of every row.
        activation_offload: keep the checkpointed layer inputs in pinned host memory (lightning_review.model.offload):
            less GPU memory at long contexts for PCIe copies beside the compute (a side stream); needs
            gradient_checkpointing; not with DDP. With ``checkpointed_layers`` the memory freed can skip
            recomputations: measured +0.2% (13B 16K) to +1.1% (7B 32K) at equal memory (session 16).
        checkpointed_layers: with gradient_checkpointing, how many decoder layers (the first ones) recompute their
            activations in backward; None: all of them. Each layer left out skips its recomputation (about a quarter
            of its step time) but keeps its activations until backward: set the largest number of layers that
            still fits, e.g. a 13B-shaped model at 8K tokens fits on one H200 with none (benchmarks/RESULTS.md).
        kernels: ``auto``: Liger's Triton RMSNorm, SwiGLU and RoPE (lightning_review.model.kernels) on CUDA when
            liger-kernel is installed; ``liger``: the same, an error where it cannot run; ``none``: transformers'.
        regenerate_lora_dropout: in the decoder layers that are not checkpointed, LoRA dropout drawn again in
            backward instead of kept (lightning_review.model.lora_dropout): the same training, 29% less memory per
            such layer (13B), for a few percent more time (a checkpointed layer keeps only its input anyway).
            Not used with ``fused_lora``, which replays the dropout itself.
        fused_lora: each LoRA layer and its frozen 4-bit base as one autograd function in training
            (lightning_review.model.fused_lora): the same masks and gradients as peft's forward, without its copies
            of the base output, the kept dropout mask and dropped input, or the separate add.
        lora_dropout_kernel: ``torch``: the dropout masks peft would draw (torch's dropout); ``triton``: drawn
            inside Triton kernels from a seed where the LoRA matmuls read or write the tensors
            (lightning_review.model.lora_kernels): the same distribution but not the same masks, no dropped copy or
            mask tensor; 1.04-1.07x a 13B step on an H200 and 0.5 GB less at 16K (benchmarks/RESULTS.md). Needs
            ``fused_lora`` and CUDA. ``auto``: ``triton`` on CUDA where Triton is installed and ``fused_lora`` is on,
            ``torch`` elsewhere. The default stays ``torch`` so that a library user gets peft's masks unless asked;
            configs/7b.yaml and configs/13b.yaml set ``auto``.
        freeze_gc: freeze the Python objects alive at train start out of the garbage collector's reach
            (lightning_review.training.garbage_collection.FrozenGarbageCollection), so that a full collection does
            not walk them inside a training step: on an H200's host, full collections of 0.38-0.56 s landed in
            3 of 22 timed steps of a 13B mix run; frozen, that run measured 6,601 against 6,233 tokens/s (+5.9%,
            benchmarks/RESULTS.md session 15).
    """

    def __init__(self, checkpoint_dir: str = TINY_LLAMA, model_max_length: int | None = None, quantize: bool = True,
                 lora_r: int = 64, lora_alpha: int = 16, lora_dropout: float = 0.05,
                 train_embeddings_and_norms: bool = True, gradient_checkpointing: bool = True,
                 s2_attention: bool = True, s2_group_size: int | None = None, max_seq_length: int = 8192,
                 attention_backend: Literal["auto", "flex", "grouped", "varlen", "reference"] = "auto",
                 learning_rate: float = 2e-4, weight_decay: float = 0.0, warmup_steps: int = 0,
                 lr_scheduler: Literal["constant_with_warmup", "cosine"] = "constant_with_warmup",
                 optimizer: Literal["auto", "paged_adamw_32bit", "adamw", "deepspeed_cpu_adam"] = "auto",
                 adapter_dir: str | None = None, max_new_tokens: int = 512, review_samples: int = 0,
                 loss_chunk_tokens: int | None = 4096, activation_offload: bool = False,
                 checkpointed_layers: int | None = None, kernels: Kernels = "auto",
                 regenerate_lora_dropout: bool = True, fused_lora: bool = True,
                 lora_dropout_kernel: DropoutKernel = "torch", freeze_gc: bool = True):
        super().__init__()
        self.save_hyperparameters()
        check_settings(self.hparams)  # fail at once, before the model loads, not at the first step
        # fail at once, before any trainer work, on a directory that is no Llama or rows longer than its context
        self.base_positions = read_llama_config(checkpoint_dir).max_position_embeddings
        if adapter_dir:
            check_adapter_files(adapter_dir)
        self.check_context(max_seq_length)
        self.s2_group_size = s2_group_size or max(2, (max_seq_length // 4) // 2 * 2)
        self.model = None
        # Checkpoints hold trainable weights only; the frozen 4-bit base comes from checkpoint_dir again.
        self.strict_loading = False

    def check_context(self, max_seq_length: int) -> None:
        """Refuse rows of ``max_seq_length`` tokens longer than the positions the model will have (its
        max_position_embeddings, times the RoPE interpolation ``model_max_length`` asks): the positions beyond were
        never trained, and the loss would not show it."""
        hp = self.hparams
        original = self.base_positions
        factor = rope_scaling_factor(hp.model_max_length, original)
        positions = self.context_positions()
        if max_seq_length <= positions:
            return
        extension = ("model.model_max_length=null asks for no RoPE scaling" if not hp.model_max_length else
                     f"model.model_max_length={hp.model_max_length}, not above them, asks for no RoPE scaling"
                     if factor == 1 else f"model.model_max_length={hp.model_max_length} interpolates RoPE by "
                     f"{factor:.0f} to {positions}")
        needed = rope_scaling_factor(max_seq_length, original)
        raise UserError(f"data.max_seq_length={max_seq_length} (tokens per training row; model.max_seq_length "
                        f"follows it) is longer than the model's context of {positions} positions: "
                        f"{hp.checkpoint_dir} has {original} positions (max_position_embeddings) and {extension}. Set "
                        f"model.model_max_length to at least {max_seq_length} (RoPE interpolated by {needed:.0f}), "
                        f"or lower data.max_seq_length to at most {positions}")

    def context_positions(self) -> int:
        """The model's context: the checkpoint's max_position_embeddings times the RoPE interpolation that
        ``model_max_length`` asks (what the loaded config's max_position_embeddings becomes)."""
        original = self.base_positions
        return int(original * rope_scaling_factor(self.hparams.model_max_length, original))

    def review_room(self) -> ReviewRoom:
        """The room a review prompt leaves for ``max_new_tokens`` in the model's context, as the ``generate`` command
        fits its prompts (lightning_review.generation.decoding.ReviewRoom): predict and the validation reviews cut
        their prompts with it. Refused, naming model.max_new_tokens, when it leaves no room for a paper."""
        from ..generation.decoding import ReviewRoom

        hp = self.hparams
        scaling = (f"model.model_max_length={hp.model_max_length}" if hp.model_max_length else
                   "model.model_max_length=null, no RoPE interpolation")
        return ReviewRoom(self.context_positions(), hp.max_new_tokens, "model.max_new_tokens",
                          f"{hp.checkpoint_dir}'s {self.base_positions} positions and {scaling}",
                          "or raise model.model_max_length (RoPE interpolation) to make the context longer")

    def setup(self, stage: str) -> None:
        """A DataModule given beside this module in a script (the CLI links the two row lengths) is held to the
        model's context too, before the model loads; so is ``max_new_tokens`` where reviews are generated
        (predict, and validation with ``review_samples``), rather than after a training epoch."""
        datamodule = self.trainer.datamodule
        length = getattr(datamodule, "hparams", {}).get("max_seq_length") if datamodule is not None else None
        if isinstance(length, int):
            self.check_context(length)
        if stage == "predict" or (self.hparams.review_samples and stage in ("fit", "validate")):
            room = self.review_room()  # refused here, not after an epoch of training or a model load
            if hasattr(datamodule, "prompt_tokenizer"):
                room.paper_budget(datamodule.prompt_tokenizer())
        if stage == "fit":
            check_val_check_interval(self.trainer)

    # ---- model -------------------------------------------------------------------------------------------------
    def configure_model(self) -> None:
        self.build(self.trainer.strategy.root_device if self._trainer is not None else None)

    def build(self, device: torch.device | str | None = None) -> None:
        """Load the model on ``device`` (default CPU) once; the Trainer calls this with its device, scripts and
        benchmarks without a Trainer call it themselves."""
        if self.model is not None:
            return
        hp = self.hparams
        device = torch.device(device or "cpu")
        precision = self.trainer.precision if self._trainer is not None else None
        base = load_llama(hp.checkpoint_dir, quantize=hp.quantize, model_max_length=hp.model_max_length,
                          device=device, dtype=compute_dtype(device, precision))
        if hp.gradient_checkpointing:
            enable_checkpointing(base)
            limit_checkpointed_layers(base, hp.checkpointed_layers)
        if hp.activation_offload:
            enable_activation_offload(base)
        if hp.adapter_dir:
            from peft import PeftModel

            with peft_reading_checkpointing_flag():
                self.model = PeftModel.from_pretrained(base, str(resolve(hp.adapter_dir)), is_trainable=True)
            keep_trainable_in_fp32(self.model, base.dtype)
        else:  # add_lora silences the same read around its own wrap
            self.model = add_lora(base, hp.lora_r, hp.lora_alpha, hp.lora_dropout, hp.train_embeddings_and_norms)
        if hp.fused_lora:  # dropout replayed too, in every layer
            use_fused_lora(self.model, dropout_kernel=resolve_dropout_kernel(hp.lora_dropout_kernel, device))
        elif hp.regenerate_lora_dropout:  # only where it saves memory: a checkpointed layer keeps its input alone
            for layer in decoder_layers(self.model):
                if not layer.gradient_checkpointing:
                    use_regenerated_lora_dropout(layer)
        if resolve_kernels(hp.kernels, device) == "liger":
            counts = use_liger_kernels(self.model)  # after peft: its trainable copies of the norms are switched too
            rank_zero_info(f"model.kernels={hp.kernels}: Liger kernels in {counts['rms_norm']} RMSNorms, "
                           f"{counts['mlp']} MLPs and the RoPE of {counts['rope']} attention modules")
        elif hp.kernels == "auto" and device.type == "cuda":
            rank_zero_info("model.kernels=auto: liger-kernel is not installed, so transformers' RMSNorm, MLP and "
                           "RoPE run (`pip install liger-kernel`: about 1.2x at 8K on a 13B, less activation memory)")
        # from_pretrained returns eval mode and Lightning 2.6 keeps each module's mode at fit start: without this,
        # attention would never see module.training (no S2-Attn) while training. Lightning's val/test/predict loops
        # switch to eval and back themselves.
        self.model.train()

    def forward(self, batch: dict) -> torch.Tensor:
        """The loss of a batch (mean over review tokens); S2 in training mode, full attention otherwise."""
        kwargs = dict(input_ids=batch["input_ids"], position_ids=batch["position_ids"], doc_lens=batch["doc_lens"],
                      attention_backend=self.hparams.attention_backend, use_cache=False,
                      s2_group_size=self.s2_group_size if self.hparams.s2_attention else None)
        if self.hparams.loss_chunk_tokens is None:
            return self.model(labels=batch["labels"], **kwargs).loss
        causal_lm = self.model.get_base_model()  # LoRA and the trainable copies are in place inside it
        hidden = causal_lm.model(**kwargs).last_hidden_state
        return review_token_loss(hidden, batch["labels"], causal_lm.get_output_embeddings(),
                                 self.hparams.loss_chunk_tokens)

    def on_train_start(self) -> None:
        """Data statistics (packing efficiency, truncations) into the logger, beside the loss curves."""
        stats = getattr(self.trainer.datamodule, "stats", None) if self.trainer.datamodule is not None else None
        if stats and self.logger is not None:
            flat = {f"data/{split}_{key}": float(value) for split, values in stats.items()
                    for key, value in values.items() if isinstance(value, (int, float))}
            self.logger.log_metrics(flat, step=self.global_step)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["doc_lens"]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log("val_loss", self(batch), prog_bar=True, sync_dist=True, batch_size=len(batch["doc_lens"]))

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.log("test_loss", self(batch), sync_dist=True, batch_size=len(batch["doc_lens"]))

    def generate_review(self, prompt_ids: list[int]) -> list[int]:
        """Greedy continuation of one prompt, with full attention and a KV cache (``sdpa``); S2 is for training.
        The same decoding as the ``generate`` command (lightning_review.generation.decoding). The prompt must leave
        ``max_new_tokens`` of the context: ``review_room().refit`` cuts one that does not."""
        from ..generation.decoding import DecodingSettings, full_attention, generate_ids

        with full_attention(self.model):  # one prompt: nothing to pad; EOS from the model's generation config
            (out,) = generate_ids(self.model, [prompt_ids], DecodingSettings(self.hparams.max_new_tokens), pad_id=0)
        return out.ids

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Greedy review of one paper (the ``generate`` command has batching, sampling, resume and API models). The
        DataModule cut the paper to data.max_seq_length; it is cut further where the prompt would leave less than
        ``max_new_tokens`` of the model's context, as ``generate`` cuts it."""
        datamodule = self.trainer.datamodule
        prompt, removed = self.review_room().refit(datamodule.prompt_tokenizer(), batch["input_ids"])
        new = self.generate_review(prompt)
        return {"id": batch["id"], "review": datamodule.tokenizer.decode(new, skip_special_tokens=True).strip(),
                "prompt_tokens": len(prompt), "generated_tokens": len(new),
                "truncated": batch["paper_tokens_removed"] + removed > 0}

    def configure_callbacks(self) -> list[L.Callback]:
        """With ``review_samples``, the callback that reviews and scores validation papers at each validation; with
        ``freeze_gc``, the one that freezes the objects alive at train start out of the garbage collector's reach
        (FrozenGarbageCollection); and Lightning's progress bar switched in place to
        lightning_review.training.progress's, which says ``Epoch 0`` and ``step 12/40`` on a run bounded by
        max_steps, not ``Epoch 0/-2``."""
        from .garbage_collection import FrozenGarbageCollection
        from .progress import use_review_progress_bar
        from .validation_reviews import ValidationReviews

        use_review_progress_bar(self.trainer)
        callbacks: list[L.Callback] = []
        if self.hparams.review_samples:
            callbacks.append(ValidationReviews(self.hparams.review_samples))
        if self.hparams.freeze_gc:
            callbacks.append(FrozenGarbageCollection())
        return callbacks

    # ---- optimisation ------------------------------------------------------------------------------------------
    def configure_optimizers(self):
        from transformers import get_scheduler

        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        name = hp.optimizer
        offloaded = _deepspeed_offloads_optimizer(self.trainer.strategy)
        if name == "auto":
            if offloaded is not None:
                name = "deepspeed_cpu_adam" if offloaded else "adamw"
            else:
                name = "paged_adamw_32bit" if self.trainer.strategy.root_device.type == "cuda" else "adamw"
        if name == "deepspeed_cpu_adam":
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            optimizer = DeepSpeedCPUAdam(params, lr=hp.learning_rate, weight_decay=hp.weight_decay, adamw_mode=True)
        elif name == "paged_adamw_32bit":
            import bitsandbytes as bnb

            optimizer = bnb.optim.PagedAdamW32bit(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
        else:
            fused = self.trainer.strategy.root_device.type == "cuda"
            optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay, fused=fused)
        total = self._scheduled_steps() if hp.lr_scheduler == "cosine" else None
        scheduler = get_scheduler(hp.lr_scheduler, optimizer, num_warmup_steps=hp.warmup_steps,
                                  num_training_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _scheduled_steps(self) -> int:
        """Optimizer steps of the whole run, for the cosine schedule.

        Not ``trainer.estimated_stepping_batches`` when our DataModule can count: with ``max_epochs`` set, that builds
        the train loader before a checkpoint is restored (always so under DeepSpeed), and the loader would then start
        the epoch over instead of at the saved row.
        """
        trainer = self.trainer
        per_epoch = getattr(trainer.datamodule, "train_batches_per_epoch", None)
        if trainer.max_epochs in (None, -1) and trainer.max_steps != -1:
            return trainer.max_steps
        if per_epoch is None or trainer.max_epochs in (None, -1):
            total = trainer.estimated_stepping_batches
            if total == float("inf"):
                raise UserError("the cosine schedule needs a finite run: set trainer.max_steps or trainer.max_epochs")
            return int(total)
        steps = math.ceil(per_epoch(trainer.world_size) / trainer.accumulate_grad_batches) * trainer.max_epochs
        return min(steps, trainer.max_steps) if trainer.max_steps != -1 else steps

    # ---- checkpoints and adapters ------------------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k in names}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """A 13B run must not write 26 GB per checkpoint: keep the trainable weights only."""
        if "state_dict" in checkpoint:
            checkpoint["state_dict"] = self.trainable_state_dict()
        save_rng_states(checkpoint)
        if self.model is not None:
            checkpoint[BASE_MODEL_KEY] = base_model_fingerprint(self.model.config)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint of another configuration; continue its random state (LoRA dropout) exactly."""
        saved = checkpoint.get("hyper_parameters")
        if saved is not None:
            differences = model_setting_differences(saved, self.hparams)
            if BASE_MODEL_KEY in checkpoint and self.model is not None:  # the base may move, not change
                differences += config_differences(checkpoint[BASE_MODEL_KEY], base_model_fingerprint(
                    self.model.config), "model.checkpoint_dir (config.json)")
            refuse_config_change(differences)
        restore_rng_states(checkpoint)
        expected = set(self.trainable_state_dict()) if self.model is not None else set()
        missing = expected - set(checkpoint.get("state_dict", {}))
        if missing and "state_dict" in checkpoint:  # DeepSpeed restores the weights itself, outside this dict
            path = getattr(self._trainer, "ckpt_path", None) if self._trainer is not None else None
            raise CheckpointError(f"{path or 'the checkpoint'} lacks {len(missing)} of this model's "
                                  f"{len(expected)} trainable weights (e.g. {sorted(missing)[0]}): it was written by "
                                  f"another model or other LoRA settings (model.lora_r, model.train_embeddings_and_"
                                  f"norms, ...); resume with that run's config.yaml, or give a checkpoint of this one")

    def save_adapter(self, directory: str | Path) -> Path:
        """A peft adapter directory (LoRA + embeddings and norms) plus the RoPE scaling the base must be loaded with.

        Load it back with ``PeftModel.from_pretrained(base, directory)`` on a base loaded with the config
        override in lightning_review.json (``lightning_review.model.loading.load_llama`` applies it).
        """
        directory = Path(directory)
        self.model.save_pretrained(directory)
        # the loaded model's config already carries the RoPE scaling
        write_adapter_record(directory, self.hparams.checkpoint_dir, self.hparams.model_max_length, self.model.config)
        return directory


# model settings the CLI sets from another key (trainer_cli links them from here): an error names the key a user
# sets
LINKED_SETTINGS = {"max_seq_length": "data.max_seq_length"}


def _setting_name(name: str) -> str:
    """``model.<name>``, or for a linked setting the key the command line sets, with the module's name beside."""
    return f"{LINKED_SETTINGS[name]} (model.{name})" if name in LINKED_SETTINGS else f"model.{name}"


def check_settings(hparams: Mapping) -> None:
    """Every numeric setting in its range, each bad one named: a bad value would otherwise fail deep inside the
    first training step, after the model loaded (a negative S2 group), or train silently wrong (a negative rate)."""
    problems = [f"{_setting_name(name)} must be {allowed}, got {hparams[name]!r}"
                for name, (ok, allowed) in SETTING_RANGES.items() if not ok(hparams[name])]
    # 1e400 on the command line or .inf in YAML is an infinite float, which every range above lets through when
    # positive (model.weight_decay=inf: a NaN loss at step 2)
    problems += [f"{_setting_name(name)} must be a finite number, got {value!r}" for name, value in hparams.items()
                 if isinstance(value, float) and not math.isfinite(value) and name in SETTING_RANGES
                 and SETTING_RANGES[name][0](value)]
    kernel = hparams.get("lora_dropout_kernel", "torch")
    if kernel not in get_args(DropoutKernel):
        problems.append(f"model.lora_dropout_kernel must be one of {', '.join(get_args(DropoutKernel))}, got "
                        f"{kernel!r}")
    if kernel == "triton" and not hparams.get("fused_lora", True):
        problems.append("model.lora_dropout_kernel=triton draws the masks inside the fused LoRA path: set "
                        "model.fused_lora to true, or model.lora_dropout_kernel to torch or auto")
    if problems:
        raise UserError("; ".join(problems))


def module_settings(hparams: Mapping) -> dict:
    """The hyperparameters that are arguments of LongQLoRAModule: LightningCLI stores keys of its own beside them
    (``_instantiator``)."""
    names = set(inspect.signature(LongQLoRAModule.__init__).parameters) - {"self"}
    return {k: v for k, v in hparams.items() if k in names}


def model_setting_differences(saved: Mapping, current: Mapping) -> list[str]:
    """``model.<setting>: saved -> current`` for each setting of this module that differs and that a resume may not
    change (RESUMABLE_MODEL_SETTINGS may)."""
    return config_differences(module_settings(saved), module_settings(current), "model",
                              ignore=RESUMABLE_MODEL_SETTINGS, defaults=parameter_defaults(LongQLoRAModule))


def enable_checkpointing(model) -> None:
    """Non-reentrant activation checkpointing of every decoder layer of a transformers model. transformers after
    5.17 (5.24 here) calls it ``activation_checkpointing_enable``, ``gradient_checkpointing_enable`` being a
    deprecated alias that warns with a FutureWarning and goes in v6; 5.17, the GPU machines' version and the lowest
    supported, has only ``gradient_checkpointing_enable``: whichever the installed version has is called."""
    kwargs = {"use_reentrant": False}
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def limit_checkpointed_layers(model: torch.nn.Module, count: int | None) -> int:
    """Keep gradient checkpointing on the first ``count`` decoder layers of ``model`` only (None: all); returns
    how many layers are checkpointed."""
    layers = decoder_layers(model)
    if count is not None:
        if count > len(layers):
            raise UserError(f"model.checkpointed_layers={count}, but the model has {len(layers)} decoder layers")
        for layer in layers[count:]:
            layer.gradient_checkpointing = False
    return sum(layer.gradient_checkpointing for layer in layers)


def _deepspeed_offloads_optimizer(strategy) -> bool | None:
    """None when not under DeepSpeed, else whether its ZeRO config offloads the optimizer to the CPU."""
    from lightning.pytorch.strategies import DeepSpeedStrategy

    if not isinstance(strategy, DeepSpeedStrategy):
        return None
    return bool(strategy.config.get("zero_optimization", {}).get("offload_optimizer"))


def base_model_fingerprint(config) -> dict:
    """The architecture fields of the base model, to tell "the same model moved" from "another model"."""
    return {field: getattr(config, field, None) for field in BASE_MODEL_FIELDS}
