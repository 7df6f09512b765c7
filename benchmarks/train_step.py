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

A variant is ``baseline``, ``ours``, or ``ours:key=value;...`` with LongQLoRAModule settings, ``rows=8192+16384``
limiting it to those row lengths.
A row is one document (a paper prompt and its review: labels on the last ``review_fraction`` of it), batch 1, one
optimizer step per row; ``--warmup`` steps untimed, then ``--steps`` timed (synchronised, median). tokens/s counts
real tokens. MFU = (6 x P x tokens + 3.5 x 2 x n^2 x hidden x layers per document) / time / peak, P the matmul
parameters including the LM head (lightning_review.training.telemetry), over the bf16 peak measured in this run
(and over the 790 TFLOP/s the issue's table uses). Peak memory: torch.cuda.max_memory_allocated over the timed steps
(weights, optimizer states, activations). ``--shape tiny --device cpu`` runs the whole script on the CPU.
"""

from __future__ import annotations

import argparse
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


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


# ---- the baseline ---------------------------------------------------------------------------------------------------
def load_baseline(checkpoint: Path, context: int, device: str, quantize: bool):
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
    lora = LoraConfig(r=64, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM", bias="none",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                      modules_to_save=["embed_tokens", "input_layernorm", "post_attention_layernorm", "norm"])
    model = get_peft_model(model, lora)
    model.train()
    return model


def baseline_steps(model, docs: list[dict], device: str, warmup: int) -> list[float]:
    """One optimizer step per document: loss = model(input_ids, labels).loss under bf16 autocast."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    times = []
    for i, d in enumerate(docs):
        ids = torch.tensor([d["input_ids"]], device=device)
        labels = ids.clone()
        labels[:, :d["prompt_length"]] = -100
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=labels, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    del optimizer
    return times


# ---- ours: the LightningModule through a Lightning Trainer ---------------------------------------------------------
def load_ours(checkpoint: Path, context: int, device: str, quantize: bool, **hparams):
    from lightning_review.model.module import LongQLoRAModule

    module = LongQLoRAModule(checkpoint_dir=str(checkpoint), model_max_length=context, quantize=quantize, lora_r=64,
                             lora_alpha=16, lora_dropout=0.05, max_seq_length=context, **hparams)
    return module


def our_steps(module, rows: list[list[dict]], row_length: int, device: str, warmup: int,
              profile_dir: str | None = None, label: str = "") -> list[float]:
    """Trainer.fit over pre-collated packed rows; a callback times each optimizer step. With ``profile_dir``,
    Lightning's PyTorchProfiler writes its operator summary there (the timings then include its overhead)."""
    import lightning as L

    from lightning_review.data.packing import collate_rows

    class StepTimer(L.Callback):
        def __init__(self):
            self.times, self.start = [], 0.0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            sync(device)
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            sync(device)
            if batch_idx >= warmup:
                self.times.append(time.perf_counter() - self.start)

    module.hparams.max_seq_length = row_length
    module.s2_group_size = max(2, (row_length // 4) // 2 * 2)
    batches = [collate_rows([row], pad_id=0, row_length=row_length) for row in rows]
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)
    timer = StepTimer()
    profiler = None
    if profile_dir:
        from lightning.pytorch.profilers import PyTorchProfiler

        profiler = PyTorchProfiler(dirpath=profile_dir, filename=f"profile_{label}", row_limit=60,
                                   sort_by_key="cuda_time_total" if device == "cuda" else "cpu_time_total")
    trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1,
                        precision="bf16-mixed", max_steps=len(batches), logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
                        num_sanity_val_steps=0, limit_val_batches=0, profiler=profiler)
    trainer.fit(module, train_dataloaders=loader)
    return timer.times


# ---- measurement ----------------------------------------------------------------------------------------------------
def summarize(times: list[float], doc_lens: list[list[int]], config, peak: float | None,
              memory: float | None) -> dict:
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
    if peak:
        out["mfu"] = round(flops / seconds / 1e12 / peak, 4)
        out["mfu_of_790"] = round(flops / seconds / 1e12 / ISSUE_PEAK_TFLOPS, 4)
    return out


def parse_variant(spec: str) -> tuple[str, dict, set[int] | None]:
    """``ours:checkpointed_layers=0;kernels=none;rows=8192+16384`` -> ("ours", LongQLoRAModule settings, the row
    lengths it runs, None: all). ``baseline`` takes no settings."""
    name, _, rest = spec.partition(":")
    if name not in ("baseline", "ours"):
        raise SystemExit(f"--variants: {spec!r}: a variant is baseline or ours[:key=value;...]")
    settings, only = {}, None
    for item in filter(None, rest.split(";")):
        key, _, value = item.partition("=")
        if key == "rows":
            only = {int(v) for v in value.split("+")}
        elif name == "baseline":
            raise SystemExit(f"--variants: {spec!r}: the baseline takes no settings")
        else:
            settings[key] = None if value in ("none", "null") and key != "kernels" else _number_or_text(value)
    return name, settings, only


def _number_or_text(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def run_variant(name: str, load, checkpoint: Path, context: int, jobs: list[tuple[str, list[int], int]], args,
                config, peak, result: dict) -> None:
    """Load one variant once, then time every job (label, document lengths, row length) on it; in a search, the
    doubling stops at the first OOM."""
    device = args.device
    reset_peak(device)
    start = time.perf_counter()
    model = load(checkpoint, context, device, args.quantize)
    if name.startswith("ours") and device == "cpu":  # on GPU the Trainer builds it on its device
        model.build(device)
    result.setdefault("load_s", {})[name] = round(time.perf_counter() - start, 1)
    for label, lengths, row_length in jobs:
        docs = documents(lengths, args.review_fraction, config.vocab_size, seed=len(lengths))
        reset_peak(device)
        try:
            if name.startswith("baseline"):
                times = baseline_steps(model, docs, device, args.warmup)
                doc_lens = [[n] for n in lengths]
            else:
                from lightning_review.data.packing import pack_best_fit_decreasing

                bins = pack_best_fit_decreasing(lengths, row_length) if args.pack else [[i] for i in range(len(docs))]
                rows = [[docs[i] for i in b] for b in bins]
                times = our_steps(model, rows, row_length, device, args.warmup, args.profile_dir, label)
                doc_lens = [[lengths[i] for i in b] for b in bins]
            entry = summarize(times, doc_lens, config, peak, peak_gb(device))
            entry["peak_host_pinned_gb"] = peak_host_pinned_gb(device)
            entry["rows"] = len(doc_lens)
            entry["warmup_rows"] = args.warmup
        except Exception as exc:  # noqa: BLE001 - OOM is a result here, anything else is re-raised
            if not is_oom(exc):
                raise
            entry = {"oom": True, "peak_gb": peak_gb(device)}
        result.setdefault(label, {})[name] = entry
        print(name, label, entry, flush=True)
        Path(args.out).write_text(json.dumps(result, indent=1))
        if args.search and entry.get("oom"):
            break
    del model
    reset_peak(device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="13b", choices=["7b", "13b", "tiny"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", default="/tmp/train_step")
    parser.add_argument("--out", default="train_step.json")
    parser.add_argument("--seqs", default="8192,16384,32768")
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
    parser.add_argument("--no-quantize", dest="quantize", action="store_false")
    parser.add_argument("--no-pack", dest="pack", action="store_false")
    parser.add_argument("--loss_chunk_tokens", type=int, default=4096, help="ours; 0: transformers' full-logits loss")
    parser.add_argument("--attention_backend", default="auto")
    parser.add_argument("--profile_dir", help="ours: write Lightning's PyTorchProfiler summary of each job here")
    parser.add_argument("--optimizer", default="adamw",
                        help="ours; adamw (torch fused, as the baseline) so that max_memory_allocated sees the "
                             "optimizer states: paged_adamw_32bit keeps them in CUDA managed memory, which it does not")
    args = parser.parse_args()
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
        from lightning_review.demo import TINY_LLAMA, resolve

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
    elif args.mix:
        rng = random.Random(0)  # lognormal around the seed's mean of ~7,600 tokens, cut to [1K, mix_row]
        lengths = [min(args.mix_row, max(1024, int(rng.lognormvariate(math.log(6800), 0.5))))
                   for _ in range(args.mix + args.warmup)]
        result["mix_lengths"] = lengths
        jobs = [(f"mix_{args.mix_row}", lengths, args.mix_row)]
    else:
        seqs = [int(s) for s in args.seqs.split(",")]
        jobs = [(f"seq_{s}", [s] * n_rows, s) for s in seqs]
    context = max(max(length for _, lengths, _ in jobs for length in lengths), config.max_position_embeddings)
    ours_kw = dict(attention_backend=args.attention_backend, optimizer=args.optimizer,
                   loss_chunk_tokens=args.loss_chunk_tokens or None)
    for spec in args.variants.split(","):
        name, settings, only = parse_variant(spec)
        load = load_baseline if name == "baseline" else partial(load_ours, **{**ours_kw, **settings})
        variant_jobs = [job for job in jobs if only is None or job[2] in only]
        run_variant(spec, load, checkpoint, context, variant_jobs, args, config, peak, result)
    for label, entry in result.items():
        if isinstance(entry, dict) and label.startswith(("seq_", "mix_", "search_")) \
                and entry.get("baseline", {}).get("tokens_per_s"):
            for spec in list(entry):
                if spec != "baseline" and entry[spec].get("tokens_per_s"):
                    entry[f"speedup {spec}"] = round(entry[spec]["tokens_per_s"] / entry["baseline"]["tokens_per_s"],
                                                     3)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "mix_lengths"}, indent=1))


if __name__ == "__main__":
    main()
