"""Training throughput and memory on one GPU: the real LongQLoRAModule path (Lightning Trainer, bf16-mixed, 4-bit
NF4, LoRA r=64 on every linear layer, trainable embeddings and norms, gradient checkpointing, S2-Attn, packing, the
review-token loss, Liger kernels where installed, torch fused AdamW) against the baseline a user writes with
transformers + peft + bitsandbytes (the same 4-bit model, LoRA and trainable embeddings/norms, SDPA attention,
gradient checkpointing, torch AdamW, full attention, transformers' loss, no packing), in the same process, on
random-weight Llama-2 7B/13B shapes.

    python benchmarks/train_step.py --shape 13b --seqs 8192,16384,32768 --out train_13b.json
    python benchmarks/train_step.py --shape 13b --variants "baseline,ours,ours:checkpointed_layers=0;rows=8192"
    python benchmarks/train_step.py --shape 13b --search 65536 --out search_13b.json     # longest context
    python benchmarks/train_step.py --shape 7b --mix 12 --out mix_7b.json                # realistic length mix
    python benchmarks/train_step.py --shape 13b --seqs 8192 --mix 12 \
        --variants "baseline,ours:checkpointed_layers=fit;width=fit"                    # at the baseline's memory

A variant is ``baseline`` (``baseline:again`` runs it once more, for its spread between runs), ``ours``, or
``ours:key=value;...`` with LongQLoRAModule settings, ``rows=8192+16384``
limiting it to those row lengths, ``width=fit`` collating packed rows at their documents' length (rounded up to 64)
rather than the row budget, and ``checkpointed_layers=fit`` searching the fewest checkpointed layers whose peak stays
within the baseline's peak of the same job times 1 + ``--memory_slack`` (the baseline must come first); the JSON's
``equal_memory`` holds, per job, the fastest variant of ours within that budget: the comparison to quote.
A row is one document (a paper prompt and its review: labels on the last ``review_fraction`` of it), batch 1, one
optimizer step per row; ``--warmup`` steps untimed, then ``--steps`` timed (synchronised, median). tokens/s counts
real tokens. MFU = (6 x P x tokens + 3.5 x 2 x n^2 x hidden x layers per document) / time / peak, P the matmul
parameters including the LM head (lightning_review.training.telemetry), over the bf16 peak measured in this run
(and over the 790 TFLOP/s the issue's table uses); ``mfu_executed`` counts instead the FLOPs the step really
computes (executed_flops: no base weight gradients, S2's grouped attention, recomputation), which cannot pass 100%. Peak memory: torch.cuda.max_memory_allocated over the timed steps
(weights, optimizer states, activations). ``--shape tiny --device cpu`` runs the whole script on the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import random
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_clocks import ClockSampler, add_interval_option  # noqa: E402  (benchmarks/ on the path, as the other scripts)
ISSUE_PEAK_TFLOPS = 790.0


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_gb(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 1e9, 2) if device == "cuda" else None


def reset_peak(device: str) -> None:
    """Peak counters reset, and cached device and pinned host blocks given back: a search's earlier lengths must not
    hold host memory that a longer one's activation offload needs."""
    if device == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        empty_host_cache = getattr(torch.accelerator, "empty_host_cache", None)  # torch >= 2.12
        if empty_host_cache is not None:
            empty_host_cache()
        torch.cuda.reset_peak_memory_stats()
        if hasattr(torch.cuda, "reset_peak_host_memory_stats"):
            torch.cuda.reset_peak_host_memory_stats()


def peak_host_pinned_gb(device: str) -> float | None:
    """Peak pinned host memory in use (torch's caching host allocator), where this torch reports it."""
    if device != "cuda" or not hasattr(torch.cuda, "host_memory_stats"):
        return None
    peak = torch.cuda.host_memory_stats().get("allocated_bytes.peak")  # pinned blocks held, rounded sizes
    return round(peak / 1e9, 2) if peak is not None else None


def documents(lengths: list[int], review_fraction: float, vocab: int, seed: int = 0) -> list[dict]:
    rng = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(100, vocab, (n,), generator=rng).tolist()
        out.append({"input_ids": ids, "prompt_length": n - max(1, int(n * review_fraction))})
    return out


def document_jobs(seqs: list[int], rows: int, mix_lengths: list[int] | None = None,
                  mix_row: int | None = None) -> list[tuple[str, list[int], int]]:
    """(label, document lengths, row length) per job: ``rows`` documents of each length in ``seqs``, then the length
    mix's documents in rows of ``mix_row`` (unsloth_step.py takes a train_step.py JSON's jobs through this too)."""
    jobs = [(f"seq_{s}", [s] * rows, s) for s in seqs]
    if mix_lengths:
        jobs.append((f"mix_{mix_row}", list(mix_lengths), mix_row))
    return jobs


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class GcRecorder:
    """Python's full (generation 2) garbage collections inside each timed step, through ``gc.callbacks``: per step
    kept, their count (``full_collections``) and total time in ms (``full_collection_ms``). A full collection walks
    every tracked object (about 596,000 with torch, transformers, peft and Lightning loaded: ~260 ms on a CPU), so one
    inside a step shows in its time. Its callback is installed from ``start_step()`` to ``end_step()`` only, which
    the step loops call just outside their timed region. Its clock is perf_counter_ns, not the perf_counter that
    times the steps."""

    def __init__(self) -> None:
        self.full_collections: list[int] = []
        self.full_collection_ms: list[float] = []
        self._count, self._ns, self._started = 0, 0, None

    def _on_gc(self, phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter_ns()
        elif self._started is not None:
            self._count += 1
            self._ns += time.perf_counter_ns() - self._started
            self._started = None

    def start_step(self) -> None:
        self._count, self._ns, self._started = 0, 0, None
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def end_step(self, keep: bool = True) -> None:
        """Close the step; ``keep``: file its figures (False for an untimed warm-up step)."""
        self.close()
        if keep:
            self.full_collections.append(self._count)
            self.full_collection_ms.append(round(self._ns / 1e6, 1))

    def close(self) -> None:
        """The callback removed: also after a step that raised (an OOM, a result here) and never reached end_step."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def last(self, steps: int) -> tuple[list[int], list[float]]:
        """The figures of the last ``steps`` kept steps (the timed pass); fewer kept than that is a bug, not a gap."""
        if len(self.full_collections) < steps:
            raise RuntimeError(f"GcRecorder kept {len(self.full_collections)} steps, fewer than the {steps} timed")
        start = len(self.full_collections) - steps
        return self.full_collections[start:], self.full_collection_ms[start:]


# ---- the baseline ---------------------------------------------------------------------------------------------------
def load_baseline(checkpoint: Path, context: int, device: str, quantize: bool, lora_dropout: float = 0.05):
    """transformers + peft + bitsandbytes as their documentation shows it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

    config = AutoConfig.from_pretrained(checkpoint)
    factor = max(1.0, math.ceil(context / config.max_position_embeddings))
    if factor > 1:
        config.rope_parameters = {**(config.rope_parameters or {}), "rope_type": "linear", "factor": factor}
        config.max_position_embeddings = int(config.max_position_embeddings * factor)
    kwargs = {}
    if quantize:
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_use_double_quant=True,
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, config=config, dtype=torch.bfloat16,
                                                 attn_implementation="sdpa", device_map={"": device}, **kwargs)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = LoraConfig(r=64, lora_alpha=16, lora_dropout=lora_dropout, task_type="CAUSAL_LM", bias="none",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                      modules_to_save=["embed_tokens", "input_layernorm", "post_attention_layernorm", "norm"])
    model = get_peft_model(model, lora)
    model.train()
    return model


def baseline_steps(model, docs: list[dict], device: str, warmup: int,
                   gc_recorder: GcRecorder | None = None) -> list[float]:
    """One optimizer step per document: loss = model(input_ids, labels).loss under bf16 autocast. ``gc_recorder``:
    the full garbage collections of each timed step recorded there."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    times = []
    for i, d in enumerate(docs):
        ids = torch.tensor([d["input_ids"]], device=device)
        labels = ids.clone()
        labels[:, :d["prompt_length"]] = -100
        sync(device)
        if gc_recorder is not None:
            gc_recorder.start_step()
        start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=labels, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
        if gc_recorder is not None:
            gc_recorder.end_step(keep=i >= warmup)
    del optimizer
    return times


# ---- ours: the LightningModule through a Lightning Trainer ---------------------------------------------------------
def load_ours(checkpoint: Path, context: int, device: str, quantize: bool, **hparams):
    from lightning_review.training.module import LongQLoRAModule

    hparams = {"lora_dropout": 0.05, **hparams}
    module = LongQLoRAModule(checkpoint_dir=str(checkpoint), model_max_length=context, quantize=quantize, lora_r=64,
                             lora_alpha=16, max_seq_length=context, **hparams)
    return module


def our_steps(module, rows: list[list[dict]], row_length: int, device: str, warmup: int,
              profile_dir: str | None = None, label: str = "", fit_width: bool = False,
              callbacks: tuple = (), gc_recorder: GcRecorder | None = None) -> list[float]:
    """Trainer.fit over pre-collated packed rows; a callback times each optimizer step. With ``profile_dir``,
    Lightning's PyTorchProfiler writes its operator summary there (the timings then include its overhead).
    ``fit_width``: each row is as wide as its documents (rounded up to 64) instead of padded to ``row_length``, which
    stays the token budget (the packing capacity, and the S2 group size is a quarter of it as in training).
    ``callbacks``: more Lightning callbacks for the Trainer (step_gaps.py's probe). ``gc_recorder``: the full
    garbage collections of each timed step recorded there."""
    import lightning as L

    from lightning_review.data.packing import collate_rows

    class StepTimer(L.Callback):
        def __init__(self):
            self.times, self.start = [], 0.0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            sync(device)
            if gc_recorder is not None:
                gc_recorder.start_step()
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            sync(device)
            if batch_idx >= warmup:
                self.times.append(time.perf_counter() - self.start)
            if gc_recorder is not None:
                gc_recorder.end_step(keep=batch_idx >= warmup)

    module.hparams.max_seq_length = row_length
    module.s2_group_size = max(2, (row_length // 4) // 2 * 2)
    batches = [collate_rows([row], pad_id=0, row_length=None if fit_width else row_length, multiple_of=64)
               for row in rows]
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)
    timer = StepTimer()
    profiler = None
    if profile_dir:
        from lightning.pytorch.profilers import PyTorchProfiler

        profiler = PyTorchProfiler(dirpath=profile_dir, filename=f"profile_{label}", row_limit=60,
                                   sort_by_key="cuda_time_total" if device == "cuda" else "cpu_time_total")
    trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1,
                        precision="bf16-mixed", max_steps=len(batches), logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer, *callbacks],
                        num_sanity_val_steps=0, limit_val_batches=0, profiler=profiler)
    trainer.fit(module, train_dataloaders=loader)
    return timer.times


# ---- measurement ----------------------------------------------------------------------------------------------------
def _s2_squares(n: int, group_size: int | None) -> int:
    """Sum over both halves of the heads of each attention group's length squared (full causal: 2 n^2)."""
    from lightning_review.model.attention import _groups_of_document

    return sum(g * g for shifted in (False, True) for _, g in _groups_of_document(n, group_size, shifted))


def _projection_widths(config) -> tuple[int, int]:
    """(q width, k/v width) of a Llama config (grouped-query attention narrows k and v)."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim


def lora_parameters_per_layer(config, r: int) -> int:
    """LoRA's parameters in one decoder layer, rank ``r`` on q, k, v, o, gate, up and down: r x (in + out) each."""
    hidden, inter = config.hidden_size, config.intermediate_size
    q_dim, kv_dim = _projection_widths(config)
    return r * ((hidden + q_dim) + 2 * (hidden + kv_dim) + (q_dim + hidden) + 3 * (hidden + inter))


def executed_flops(config, doc_lens: list[list[int]], widths: list[int], *, group_size: int | None,
                   checkpointed: int, review_tokens: list[int] | None, lora_r: int = 64,
                   fused_lora: bool = False) -> float:
    """The FLOPs a step actually computes (not the model FLOPs of the issue's MFU), so that this utilisation
    cannot pass 100%. Per row of ``width`` tokens (padding included: it goes through every linear layer):
    - base linear layers, frozen: forward 2P, backward input gradient 2P (no weight gradient), and one more
      forward in each of the ``checkpointed`` layers (recomputation), without down_proj's with ``fused_lora``
      (lightning_review.model.fused_lora skips that matmul, whose output no one reads in backward);
    - LoRA (r on the 7 projections): forward 2R, backward 4R (input and weight gradients), recomputation 2R;
    - attention per layer and document: forward hidden x (sum of squared group lengths over both halves of the
      heads; full causal: 2 n^2 hidden, S2: about a quarter), backward 2.5x forward, recomputation 1x;
    - LM head (V x hidden): on the labelled tokens only when ``review_tokens`` is given (ours: forward, its
      checkpointed recomputation, input gradient), else on every position (transformers' loss: forward + input
      gradient)."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    q_dim, kv_dim = _projection_widths(config)
    inter = config.intermediate_size
    base = hidden * q_dim + 2 * hidden * kv_dim + q_dim * hidden + 3 * hidden * inter
    lora = lora_parameters_per_layer(config, lora_r)
    recompute = checkpointed / layers
    head = config.vocab_size * hidden
    total = 0.0
    for i, (lens, width) in enumerate(zip(doc_lens, widths)):
        recomputed_base = base - (inter * hidden if fused_lora else 0)
        linear = (2 * base * 2 + 2 * recomputed_base * recompute + lora * (6 + 2 * recompute)) * width * layers
        attention = sum(_s2_squares(n, group_size) for n in lens) * hidden * (3.5 + recompute) * layers
        head_tokens = review_tokens[i] if review_tokens is not None else width
        total += linear + attention + head * head_tokens * (6 if review_tokens is not None else 4)
    return total


def summarize(times: list[float], doc_lens: list[list[int]], config, peak: float | None,
              memory: float | None, executed: list[float] | None = None) -> dict:
    """tokens/s, the issue's model-FLOP MFU and, with ``executed`` (FLOPs actually computed per step, see
    executed_flops), the utilisation of the work the GPU really did."""
    from lightning_review.training.telemetry import training_flops

    per_step = [sum(row) for row in doc_lens]
    if not times:
        return {}
    tokens = sum(per_step[-len(times):])
    flops = training_flops(config, doc_lens[-len(times):])
    seconds = sum(times)
    out = {"steps": len(times), "median_step_s": round(statistics.median(times), 3),
           "tokens_per_s": round(tokens / seconds, 1), "model_tflops_per_s": round(flops / seconds / 1e12, 1),
           "peak_gb": memory}
    done = sum(executed[-len(times):]) if executed else None
    if done:
        out["executed_tflops_per_s"] = round(done / seconds / 1e12, 1)
    if peak:
        out["mfu"] = round(flops / seconds / 1e12 / peak, 4)
        out["mfu_of_790"] = round(flops / seconds / 1e12 / ISSUE_PEAK_TFLOPS, 4)
        if done:
            out["mfu_executed"] = round(done / seconds / 1e12 / peak, 4)
    return out


def parse_variant(spec: str) -> tuple[str, dict, set[int] | None, dict]:
    """``ours:checkpointed_layers=0;kernels=none;rows=8192+16384;width=fit`` -> ("ours", LongQLoRAModule settings,
    the row lengths it runs (None: all), benchmark settings). Benchmark settings: ``width=fit`` (rows as wide as
    their documents, see our_steps) and ``checkpointed_layers=fit`` (the equal-memory search, see
    fit_checkpointed_layers). ``baseline`` takes no settings; ``baseline:again`` runs it a second time in the same
    process (after ours, say), so that the summary can give each ratio against both runs: the baseline's own spread.
    ``set.<module>.<NAME>=value`` sets a constant of lightning_review.model.<module> while the variant runs (a lever
    measured against the library's default in one process, e.g. ``set.fused_lora.ACCUMULATE_IN_BASE=true``)."""
    name, _, rest = spec.partition(":")
    if name not in ("baseline", "ours"):
        raise SystemExit(f"--variants: {spec!r}: a variant is baseline or ours[:key=value;...]")
    settings, only, bench = {}, None, {}
    for item in filter(None, rest.split(";")):
        key, _, value = item.partition("=")
        if key == "rows":
            only = {int(v) for v in value.split("+")}
        elif name == "baseline" and key == "again" and not value:
            bench["again"] = True
        elif name == "baseline":
            raise SystemExit(f"--variants: {spec!r}: the baseline takes no settings")
        elif key == "width":
            if value not in ("fit", "fixed"):
                raise SystemExit(f"--variants: {spec!r}: width is fit or fixed")
            bench["fit_width"] = value == "fit"
        elif key == "checkpointed_layers" and value == "fit":
            bench["fit_checkpointing"] = True
        elif key.startswith("set."):
            module_name, _, constant = key[len("set."):].rpartition(".")
            if not module_name or not constant.isupper():
                raise SystemExit(f"--variants: {spec!r}: set.<module>.<CONSTANT>=value, e.g. "
                                 "set.fused_lora.ACCUMULATE_IN_BASE=true")
            bench.setdefault("library", {})[(module_name, constant)] = _number_or_text(value)
        else:
            settings[key] = None if value in ("none", "null") and key != "kernels" else _number_or_text(value)
    return name, settings, only, bench


def _number_or_text(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def set_checkpointed_layers(module, count: int) -> None:
    """On a built LongQLoRAModule: the first ``count`` decoder layers recompute in backward and the others keep
    their activations, with LoRA dropout replayed in those others only, as ``LongQLoRAModule(checkpointed_layers=
    count)`` builds it; the equal-memory search tries several counts on one loaded model this way."""
    from peft.tuners.lora import LoraLayer

    from lightning_review.model.loading import decoder_layers
    from lightning_review.model.lora_dropout import RegeneratedDropoutLinear, use_regenerated_lora_dropout

    for i, layer in enumerate(decoder_layers(module.model)):
        layer.gradient_checkpointing = i < count
        if not layer.gradient_checkpointing:
            if module.hparams.regenerate_lora_dropout and not module.hparams.fused_lora:
                use_regenerated_lora_dropout(layer)  # fused_lora replays the dropout in every layer itself
            continue
        for lora in layer.modules():  # back to peft's own dropout where an earlier count replayed it
            if isinstance(lora, LoraLayer):
                for key, lora_a in lora.lora_A.items():
                    if isinstance(lora_a, RegeneratedDropoutLinear):
                        lora.lora_dropout[key] = torch.nn.Dropout(lora_a.dropout_p)
                        del lora_a.dropout_p
                        lora_a.__class__ = torch.nn.Linear


def fit_checkpointed_layers(peak_at, layers: int, budget: float, max_probes: int = 8) -> int:
    """The fewest checkpointed layers whose peak memory ``peak_at(count)`` (GB, inf on OOM) is within ``budget``:
    every layer, then two fewer, then the count the per-layer slope predicts, corrected one layer at a time.
    Returns ``layers`` when even that is over the budget (the caller reports it)."""
    def fits(count: int) -> bool:
        return peak_at(count) <= budget

    if not fits(layers):
        return layers
    step = min(2, layers)
    if step == 0:
        return layers
    if not fits(layers - step):
        return layers - 1 if step == 2 and fits(layers - 1) else layers
    slope = (peak_at(layers - step) - peak_at(layers)) / step
    count = 0 if slope <= 0 else max(0, layers - int((budget - peak_at(layers)) / slope))
    count = min(count, layers - step)
    probes = 3
    while not fits(count):  # ends at layers - step at the latest, which fits
        count += 1
        probes += 1
    while count > 0 and probes < max_probes and fits(count - 1):
        count -= 1
        probes += 1
    return count


@contextlib.contextmanager
def library_constants(values: dict[tuple[str, str], object]):
    """Set constants of lightning_review.model modules ({(module, NAME): value}) for the block, then restore them."""
    import importlib

    saved = []
    try:
        for (module_name, constant), value in values.items():
            module = importlib.import_module(f"lightning_review.model.{module_name}")
            if not hasattr(module, constant):
                raise SystemExit(f"--variants: lightning_review.model.{module_name} has no {constant}")
            saved.append((module, constant, getattr(module, constant)))
            setattr(module, constant, value)
        yield
    finally:
        for module, constant, value in reversed(saved):
            setattr(module, constant, value)


def _release_trainer(module) -> None:
    """Drop the finished Trainer (its optimizer states) and the gradients, so the next job's peak is its own."""
    if module is not None and hasattr(module, "_trainer"):
        module._trainer = None
        module.zero_grad(set_to_none=True)


def _split_passes(args, times: list[float], rows: int) -> tuple[list[float], list[float]]:
    """(the first pass's steps, the last pass's) out of the steps timed after the first pass's ``args.warmup``:
    the last pass is the job's timing, the same rows in the same order whatever the passes; the first, with more
    than one pass, is what a run that meets these shapes once pays (first-call costs per shape included)."""
    timed = rows - args.warmup
    return (times[:timed] if args.passes > 1 else []), times[len(times) - timed:]


def run_variant(name: str, load, checkpoint: Path, context: int, jobs: list[tuple[str, list[int], int]], args,
                config, peak, result: dict, bench: dict | None = None, kind: str | None = None,
                loaded=None) -> None:
    """Load one variant once (``load(checkpoint, context, device, quantize)``), then time every job (label, document
    lengths, row length) on it, filing each job's entry under ``result[label][name]`` and writing ``args.out``
    after each; in a search, the doubling stops at the first OOM. ``kind``, by default the name's prefix: "ours" (a
    LongQLoRAModule through Lightning, our_steps) or "baseline" (a transformers model, one document an optimizer
    step, baseline_steps: the protocol unsloth_step.py's model is timed with too). ``loaded(model)``: called once
    the model is loaded, before its jobs. ``bench``: parse_variant's benchmark settings (fit widths, the
    equal-memory search of checkpointed layers against the baseline's peak of the same job times 1 +
    --memory_slack)."""
    bench = bench or {}
    with library_constants(bench.get("library", {})):
        _run_variant(name, load, checkpoint, context, jobs, args, config, peak, result, bench, kind, loaded)


def _run_variant(name, load, checkpoint, context, jobs, args, config, peak, result, bench, kind, loaded) -> None:
    kind = kind or ("ours" if name.startswith("ours") else "baseline")
    if kind not in ("baseline", "ours"):
        raise ValueError(f"run_variant: kind {kind!r} is baseline or ours")
    device = args.device
    reset_peak(device)
    start = time.perf_counter()
    model = load(checkpoint, context, device, args.quantize)
    if kind == "ours":  # built here, not in the Trainer, so that no job's peak includes loading
        model.build(device)
    result.setdefault("load_s", {})[name] = round(time.perf_counter() - start, 1)
    if loaded is not None:
        loaded(model)
    for label, lengths, row_length in jobs:
        docs = documents(lengths, args.review_fraction, config.vocab_size, seed=len(lengths))
        reset_peak(device)
        extra: dict = {}
        gc_steps = GcRecorder()
        try:
            if kind == "baseline":
                with ClockSampler(args.clock_interval_ms) as clocks:
                    times = baseline_steps(model, docs * args.passes, device, args.warmup, gc_recorder=gc_steps)
                first, times = _split_passes(args, times, len(docs))
                doc_lens = [[n] for n in lengths]
                executed = [executed_flops(config, [[n]], [n], group_size=None, checkpointed=config.num_hidden_layers,
                                           review_tokens=None) for n in lengths]
            else:
                from lightning_review.data.packing import pack_best_fit_decreasing
                from lightning_review.model.loading import decoder_layers

                bins = pack_best_fit_decreasing(lengths, row_length) if args.pack else [[i] for i in range(len(docs))]
                rows = [[docs[i] for i in b] for b in bins]
                doc_lens = [[lengths[i] for i in b] for b in bins]
                fit_width = bench.get("fit_width", False)
                widths = [-(-sum(row) // 64) * 64 if fit_width else row_length for row in doc_lens]
                layers = decoder_layers(model.model)
                if bench.get("fit_checkpointing"):
                    extra = search_checkpointing(model, label, rows, doc_lens, row_length, args, result, fit_width)
                    set_checkpointed_layers(model, extra["checkpointed_layers"])
                    reset_peak(device)
                checkpointed = sum(layer.gradient_checkpointing for layer in layers) \
                    if model.hparams.gradient_checkpointing else 0
                with ClockSampler(args.clock_interval_ms) as clocks:
                    times = our_steps(model, rows * args.passes, row_length, device, args.warmup,
                                      args.profile_dir, label, fit_width, gc_recorder=gc_steps)
                first, times = _split_passes(args, times, len(rows))
                _release_trainer(model)
                group = max(2, (row_length // 4) // 2 * 2) if model.hparams.s2_attention else None
                review = [sum(max(1, int(n * args.review_fraction)) for n in row) for row in doc_lens]
                executed = [executed_flops(config, [d], [w], group_size=group, checkpointed=checkpointed,
                                           review_tokens=[r], fused_lora=model.hparams.fused_lora)
                            for d, w, r in zip(doc_lens, widths, review)]
                extra.update(checkpointed_layers=checkpointed,
                             real_token_fraction=round(sum(map(sum, doc_lens)) / sum(widths), 4))
            entry = summarize(times, doc_lens, config, peak, peak_gb(device), executed)
            entry.update(extra)
            entry["peak_host_pinned_gb"] = peak_host_pinned_gb(device)
            entry["rows"] = len(doc_lens)
            entry["warmup_rows"] = args.warmup
            entry["passes"] = args.passes
            entry["step_s"] = [round(t, 3) for t in times]
            # Python's full garbage collections in each timed step (the last pass's, aligned with step_s)
            entry["gc_full_collections"], entry["gc_full_collection_ms"] = gc_steps.last(len(times))
            if first:
                first_pass = summarize(first, doc_lens, config, peak, None)
                entry["first_pass"] = {"tokens_per_s": first_pass["tokens_per_s"],
                                       "median_step_s": first_pass["median_step_s"],
                                       "step_s": [round(t, 3) for t in first]}
            entry["gpu_clocks"] = clocks.summary()  # warm-up steps included: whether the variants ran alike
            if "budget_gb" in entry and entry.get("peak_gb") is not None:
                entry["within_budget"] = entry["peak_gb"] <= entry["budget_gb"]
        except Exception as exc:  # noqa: BLE001 - OOM is a result here, anything else is re-raised
            if not is_oom(exc):
                raise
            _release_trainer(model if kind == "ours" else None)
            entry = {"oom": True, "peak_gb": peak_gb(device), **extra}
        finally:
            gc_steps.close()
        result.setdefault(label, {})[name] = entry
        print(name, label, entry, flush=True)
        Path(args.out).write_text(json.dumps(result, indent=1))
        if args.search and entry.get("oom"):
            break
    del model
    reset_peak(device)


def search_checkpointing(module, label: str, rows: list[list[dict]], doc_lens: list[list[int]], row_length: int,
                         args, result: dict, fit_width: bool) -> dict:
    """The equal-memory point of one job: the fewest checkpointed layers whose peak, over a warm-up and a timed
    step on the job's two widest rows, is within the baseline's peak of the same job times 1 + --memory_slack."""
    from lightning_review.model.loading import decoder_layers

    baseline = result.get(label, {}).get("baseline", {}).get("peak_gb")
    if not baseline:
        raise SystemExit("checkpointed_layers=fit needs the baseline before it in --variants (its peak is the budget)")
    budget = round(baseline * (1 + args.memory_slack), 2)
    widest = sorted(range(len(rows)), key=lambda i: -sum(doc_lens[i]))[:2]
    probe_rows = [rows[i] for i in (widest * 2)[:2]]
    probes: dict[int, float] = {}

    def peak_at(count: int) -> float:
        if count not in probes:
            set_checkpointed_layers(module, count)
            reset_peak(args.device)
            try:
                our_steps(module, probe_rows, row_length, args.device, 1, None, label, fit_width)
                probes[count] = peak_gb(args.device) or 0.0
            except Exception as exc:  # noqa: BLE001
                if not is_oom(exc):
                    raise
                probes[count] = math.inf
            _release_trainer(module)
            print(f"  {label}: {count} checkpointed layers -> peak {probes[count]} GB (budget {budget})", flush=True)
        return probes[count]

    count = fit_checkpointed_layers(peak_at, len(decoder_layers(module.model)), budget)
    return {"budget_gb": budget, "baseline_peak_gb": baseline, "probes": {str(k): v for k, v in probes.items()},
            "checkpointed_layers": count}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="13b", choices=["7b", "13b", "tiny"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", default="/tmp/train_step")
    parser.add_argument("--out", default="train_step.json")
    parser.add_argument("--seqs", default=None,
                        help="single-document rows of these lengths (default 8192,16384,32768 unless --mix or "
                             "--search is given; --mix adds its job after these)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--variants", default="baseline,ours",
                        help="comma-separated: baseline, ours, or ours:key=value;... with LongQLoRAModule settings "
                             "(e.g. ours:checkpointed_layers=0;kernels=none) and rows=8192+16384 to run only those "
                             "row lengths")
    parser.add_argument("--review_fraction", type=float, default=0.1)
    parser.add_argument("--mix", type=int, default=0, help="documents of a realistic length mix (mean ~7,600)")
    parser.add_argument("--mix_row", type=int, default=16384)
    parser.add_argument("--search", type=int, default=0, help="longest context: start here, double until OOM")
    parser.add_argument("--search_cap", type=int, default=262144)
    parser.add_argument("--memory_slack", type=float, default=0.05,
                        help="checkpointed_layers=fit: the memory budget is the baseline's peak times 1 + this")
    parser.add_argument("--no-quantize", dest="quantize", action="store_false")
    parser.add_argument("--no-pack", dest="pack", action="store_false")
    parser.add_argument("--loss_chunk_tokens", type=int, default=4096, help="ours; 0: transformers' full-logits loss")
    parser.add_argument("--attention_backend", default="auto")
    parser.add_argument("--profile_dir", help="ours: write Lightning's PyTorchProfiler summary of each job here")
    parser.add_argument("--lora_dropout", type=float, default=0.05,
                        help="LoRA dropout of the baseline and ours (LongQLoRA's 0.05; 0 is unsloth's fast path)")
    parser.add_argument("--passes", type=int, default=1,
                        help="run each job's rows this many times and time the last pass (for baseline and ours "
                             "alike). Each mix document has a length of its own: the first pass meets each shape "
                             "first (the 7B baseline's second mix pass took 6-42%% less time a step, session 12); "
                             "the first pass's figures are kept beside (first_pass, and the summary's "
                             "first_pass_ratio)")
    add_interval_option(parser, 1000, "sampled during each job, loading and warm-up included")
    parser.add_argument("--optimizer", default="adamw",
                        help="ours; adamw (torch fused, as the baseline) so that max_memory_allocated sees the "
                             "optimizer states: paged_adamw_32bit keeps them in CUDA managed memory, which it does not")
    args = parser.parse_args(argv)
    if args.passes < 1:
        parser.error(f"--passes {args.passes}: at least 1 (1 times the first pass)")
    from shapes import random_llama_checkpoint

    result: dict = {"shape": args.shape, "args": vars(args), "torch": torch.__version__,
                    "date": time.strftime("%Y-%m-%d")}
    peak = None
    if args.device == "cuda":
        from peak_flops import measure

        result["device_name"] = torch.cuda.get_device_name()
        result["peak_bf16_tflops"] = peak = round(measure(), 1)
    start = time.perf_counter()
    if args.shape == "tiny":
        from lightning_review.artifacts.model_sources import TINY_LLAMA, resolve

        checkpoint = resolve(TINY_LLAMA)
    else:
        checkpoint = random_llama_checkpoint(args.shape, Path(args.work) / f"llama-{args.shape}-random",
                                             device=args.device)
    result["build_checkpoint_s"] = round(time.perf_counter() - start, 1)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(checkpoint)
    n_rows = args.warmup + args.steps
    if args.search:
        seqs, s = [], args.search
        while s <= args.search_cap:
            seqs.append(s)
            s *= 2
        jobs = [(f"search_{s}", [s], s) for s in seqs]  # one row each
        args.warmup = 0
    else:
        seqs = [int(s) for s in (args.seqs or ("" if args.mix else "8192,16384,32768")).split(",") if s]
        if args.mix:
            rng = random.Random(0)  # lognormal around the seed's mean of ~7,600 tokens, cut to [1K, mix_row]
            result["mix_lengths"] = [min(args.mix_row, max(1024, int(rng.lognormvariate(math.log(6800), 0.5))))
                                     for _ in range(args.mix + args.warmup)]
        jobs = document_jobs(seqs, n_rows, result.get("mix_lengths"), args.mix_row)
    context = max(max(length for _, lengths, _ in jobs for length in lengths), config.max_position_embeddings)
    ours_kw = dict(attention_backend=args.attention_backend, optimizer=args.optimizer,
                   loss_chunk_tokens=args.loss_chunk_tokens or None, lora_dropout=args.lora_dropout)
    for spec in args.variants.split(","):
        name, settings, only, bench = parse_variant(spec)
        load = (partial(load_baseline, lora_dropout=args.lora_dropout) if name == "baseline"
                else partial(load_ours, **{**ours_kw, **settings}))
        variant_jobs = [job for job in jobs if only is None or job[2] in only]
        try:
            run_variant(spec, load, checkpoint, context, variant_jobs, args, config, peak, result, bench)
        except Exception as exc:  # noqa: BLE001 - one failing variant must not lose the others' figures
            import traceback

            traceback.print_exc()
            result.setdefault("errors", {})[spec] = repr(exc)[:500]
            Path(args.out).write_text(json.dumps(result, indent=1))
        reset_peak(args.device)
    for label, entry in result.items():
        if isinstance(entry, dict) and label.startswith(("seq_", "mix_", "search_")) \
                and entry.get("baseline", {}).get("tokens_per_s"):
            for spec in list(entry):
                if spec != "baseline" and entry[spec].get("tokens_per_s"):
                    entry[f"speedup {spec}"] = round(entry[spec]["tokens_per_s"] / entry["baseline"]["tokens_per_s"],
                                                     3)
    result["equal_memory"] = equal_memory_summary(result)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "mix_lengths"}, indent=1))
    print(json.dumps(result["equal_memory"], indent=1))


def equal_memory_summary(result: dict) -> dict:
    """Per job, THE comparison: the fastest variant of ours whose peak is within the baseline's peak times 1 +
    --memory_slack, against the baseline (variants without a peak, on CPU, are left out)."""
    slack = result.get("args", {}).get("memory_slack", 0.05)
    out = {}
    for label, entry in result.items():
        if not (isinstance(entry, dict) and label.startswith(("seq_", "mix_", "search_"))):
            continue
        base = entry.get("baseline", {})
        if not base.get("tokens_per_s") or base.get("peak_gb") is None:
            continue
        budget = round(base["peak_gb"] * (1 + slack), 2)  # as search_checkpointing rounds it
        fitting = {spec: e for spec, e in entry.items() if spec.startswith("ours") and isinstance(e, dict)
                   and e.get("tokens_per_s") and e.get("peak_gb") is not None and e["peak_gb"] <= budget}
        if not fitting:
            out[label] = {"budget_gb": round(budget, 2), "best": None}
            continue
        spec = max(fitting, key=lambda k: fitting[k]["tokens_per_s"])
        out[label] = {"budget_gb": round(budget, 2), "best": spec, "tokens_per_s": fitting[spec]["tokens_per_s"],
                      "peak_gb": fitting[spec]["peak_gb"], "baseline_tokens_per_s": base["tokens_per_s"],
                      "baseline_peak_gb": base["peak_gb"],
                      "ratio": round(fitting[spec]["tokens_per_s"] / base["tokens_per_s"], 3)}
        ours_first, base_first = fitting[spec].get("first_pass"), base.get("first_pass")
        if ours_first and base_first:  # --passes: the same variants' first passes, where each shape was new
            out[label].update(first_pass_tokens_per_s=ours_first["tokens_per_s"],
                              first_pass_baseline_tokens_per_s=base_first["tokens_per_s"],
                              first_pass_ratio=round(ours_first["tokens_per_s"] / base_first["tokens_per_s"], 3))
        again = entry.get("baseline:again", {}).get("tokens_per_s")
        if again:
            out[label].update(baseline_again_tokens_per_s=again,
                              ratio_against_baseline_again=round(fitting[spec]["tokens_per_s"] / again, 3))
    return out


if __name__ == "__main__":
    main()
