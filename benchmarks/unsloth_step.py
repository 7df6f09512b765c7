"""Unsloth beside train_step.py (issue 19): the same random-weight Llama-2 checkpoint, documents and step protocol as
train_step.py's baseline (train_step.baseline_steps: one document per optimizer step, labels on its last
review_fraction, bf16 autocast, torch AdamW, --warmup untimed then --steps timed), trained through unsloth's
FastLanguageModel. A script of its own because importing unsloth patches transformers and peft for the whole process:
it runs after train_step.py, in the same machine session, on the checkpoint train_step.py built (same --work).

    pip install -e ".[bench-unsloth]"    # offline: the wheels benchmarks/RESULTS.md's unsloth section lists
    python benchmarks/train_step.py --shape 13b --seqs 8192 --mix 12 --variants baseline --out train_13b.json
    python benchmarks/unsloth_step.py --like train_13b.json --out unsloth_13b.json

``--like`` names a train_step.py JSON (a fresh one, or one under benchmarks/results for its lengths only): its shape,
--work, lengths (each --seqs length warmup + steps times, and its mix_lengths), review_fraction and measured bf16 peak
are used, and its entries of each job are copied beside ``unsloth`` with ``speedup unsloth`` (over its baseline) and
``ours over unsloth``. Without --like: --shape and --seqs.
Unsloth's settings: 4-bit NF4 (load_in_4bit: double quantization, bf16 compute, lm_head not quantized, as the
baseline), LoRA r=64 alpha=16 dropout --lora_dropout (the --like run's, train_step.py's default 0.05: unsloth fuses
dropout into its LoRA kernels)
on q/k/v/o/gate/up/down, embed_tokens and every norm trained (modules_to_save), use_gradient_checkpointing="unsloth"
(every layer; its checkpoints go to pinned host memory, hence peak_host_pinned_gb), linear RoPE scaling by the
baseline's factor. The JSON records what unsloth really set up: its fast LoRA functions, the trainable parameters
against the baseline's count, the attention backend. Offline: statistics off, Hugging Face offline, local files only.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lightning_review.model.loading import EMBEDDINGS_AND_NORMS, LORA_TARGETS  # noqa: E402 - imports no transformers

OFFLINE_ENV = {"UNSLOTH_DISABLE_STATISTICS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--like", help="a train_step.py JSON: shape, work, lengths, review_fraction, peak from it")
    parser.add_argument("--shape", choices=["7b", "13b"], help="default 13b")
    parser.add_argument("--seqs", help="single-document jobs of these lengths (default 8192)")
    parser.add_argument("--steps", type=int, help="default 3")
    parser.add_argument("--warmup", type=int, help="default 1")
    parser.add_argument("--review_fraction", type=float, help="default 0.1")
    parser.add_argument("--work", help="where train_step.py built the checkpoint (default /tmp/train_step)")
    parser.add_argument("--lora_dropout", type=float, help="default 0.05 (train_step.py --lora_dropout's)")
    parser.add_argument("--out", default="unsloth_step.json")
    args = parser.parse_args(argv)
    settings = {"shape": "13b", "seqs": "8192", "steps": 3, "warmup": 1, "review_fraction": 0.1,
                "work": "/tmp/train_step", "lora_dropout": 0.05}
    if args.like:  # the run's own settings; one given here as well must agree
        ran = json.loads(Path(args.like).read_text()).get("args")
        if not isinstance(ran, dict) or "mix" not in ran:
            raise SystemExit(f"--like {args.like}: not a train_step.py JSON (no args with mix)")
        settings = {key: ran.get(key, default) for key, default in settings.items()}
        settings["seqs"] = ran.get("seqs") or ("" if ran["mix"] else "8192,16384,32768")
    for key, value in settings.items():
        if getattr(args, key) is not None and args.like and getattr(args, key) != value:
            raise SystemExit(f"--{key} {getattr(args, key)}: {args.like} ran {key}={value!r}; leave --{key} out")
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def jobs_of(args: argparse.Namespace, like: dict | None) -> list[tuple[str, list[int]]]:
    """(label, document lengths) per job, the labels and lengths train_step.py gave the same jobs."""
    jobs = [(f"seq_{s}", [int(s)] * (args.warmup + args.steps)) for s in str(args.seqs).split(",") if s]
    if like and like.get("mix_lengths"):
        jobs.append((f"mix_{like['args']['mix_row']}", like["mix_lengths"]))
    if not jobs:
        raise SystemExit(f"{args.like or '--seqs'}: no job (no seqs and no mix_lengths)")
    return jobs


def expected_trainable(config, r: int) -> int:
    """The baseline's trainable parameters: LoRA on the 7 projections, embed_tokens, every RMSNorm."""
    from train_step import lora_parameters_per_layer

    h, layers = config.hidden_size, config.num_hidden_layers
    return layers * lora_parameters_per_layer(config, r) + config.vocab_size * h + (2 * layers + 1) * h


def load_unsloth(checkpoint: Path, context: int, lora_dropout: float, offload_dir: Path):
    import torch
    from unsloth import FastLanguageModel

    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(checkpoint)
    factor = max(1.0, math.ceil(context / config.max_position_embeddings))  # as train_step.load_baseline
    model, _ = FastLanguageModel.from_pretrained(
        str(checkpoint), max_seq_length=int(config.max_position_embeddings * factor), dtype=torch.bfloat16,
        load_in_4bit=True, local_files_only=True, device_map={"": "cuda"}, use_gradient_checkpointing="unsloth",
        rope_scaling={"type": "linear", "factor": factor} if factor > 1 else None)
    model = FastLanguageModel.get_peft_model(
        model, r=64, lora_alpha=16, lora_dropout=lora_dropout, bias="none", target_modules=LORA_TARGETS,
        modules_to_save=EMBEDDINGS_AND_NORMS, use_gradient_checkpointing="unsloth", random_state=0,
        temporary_location=str(offload_dir))
    FastLanguageModel.for_training(model)
    return model


def describe(model, config) -> dict:
    """What unsloth set up, read off the model: fast LoRA paths, trainable parameters, attention backend."""
    import torch
    import unsloth
    from unsloth.kernels import fast_lora
    from unsloth.models import _utils

    layer = model.get_base_model().model.layers[0]
    name = lambda f: getattr(f, "__name__", type(f).__name__)  # noqa: E731
    by_dtype: collections.Counter = collections.Counter()
    full = set()
    for key, p in model.named_parameters():
        if p.requires_grad:
            by_dtype[str(p.dtype).removeprefix("torch.")] += p.numel()
            if "lora_" not in key:
                full.add(key.replace(".modules_to_save.default", "").removesuffix(".weight").split(".")[-1])
    trainable, expected = sum(by_dtype.values()), expected_trainable(config, 64)
    if trainable != expected:
        print(f"WARNING: unsloth trains {trainable} parameters, the baseline {expected}: not like for like", flush=True)
    dropouts = [getattr(m, "lora_dropout", None) for m in model.modules()]
    dropout = {float(d.p) for ds in dropouts if isinstance(ds, torch.nn.ModuleDict) for d in ds.values()
               if isinstance(d, torch.nn.Dropout)}
    return {"unsloth": unsloth.__version__, "lora_dropout": sorted(dropout) or [0.0],
            "fused_lora_dropout": fast_lora.FUSED_LORA_DROPOUT,
            "fast_lora": {"qkv": name(getattr(layer.self_attn, "apply_qkv", None)),
                          "o": name(getattr(layer.self_attn, "apply_o", None)), "mlp": name(layer.mlp.forward)},
            "trainable_params": trainable, "trainable_by_dtype": dict(by_dtype), "baseline_trainable_params": expected,
            "trained_in_full": sorted(full),
            "attention": "flash_attn" if _utils.HAS_FLASH_ATTENTION else "xformers" if _utils.xformers else "sdpa",
            "rope": getattr(model.config, "rope_parameters", None) or getattr(model.config, "rope_scaling", None)}


def compare(entries: dict, key: str) -> None:
    """Beside unsloth's entry: speedup over the baseline, and each of our variants over unsloth."""
    mine = entries[key].get("tokens_per_s")
    if not mine:
        return
    if entries.get("baseline", {}).get("tokens_per_s"):
        entries[f"speedup {key}"] = round(mine / entries["baseline"]["tokens_per_s"], 3)
    ours = {spec: round(e["tokens_per_s"] / mine, 3) for spec, e in entries.items()
            if spec.startswith("ours") and isinstance(e, dict) and e.get("tokens_per_s")}
    if ours:
        entries[f"ours over {key}"] = ours


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    like = json.loads(Path(args.like).read_text()) if args.like else None
    jobs = jobs_of(args, like)
    work = Path(args.work)
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("UNSLOTH_COMPILE_LOCATION", str(work / "unsloth_compiled_cache"))
    import unsloth  # noqa: F401  - before transformers and peft, which it patches

    import torch

    import train_step as ts
    from shapes import random_llama_checkpoint

    start = time.perf_counter()
    checkpoint = random_llama_checkpoint(args.shape, work / f"llama-{args.shape}-random")
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(checkpoint)
    result: dict = {"shape": args.shape, "args": vars(args), "torch": torch.__version__,
                    "date": time.strftime("%Y-%m-%d"), "device_name": torch.cuda.get_device_name(),
                    "build_checkpoint_s": round(time.perf_counter() - start, 1)}
    peak = (like or {}).get("peak_bf16_tflops")
    if peak is None:
        from peak_flops import measure

        peak = round(measure(), 1)
    result["peak_bf16_tflops"] = peak
    key = "unsloth"
    context = max(max(max(lengths) for _, lengths in jobs), config.max_position_embeddings)
    ts.reset_peak("cuda")
    start = time.perf_counter()
    model = load_unsloth(checkpoint, context, args.lora_dropout, work / "unsloth_offload")
    result["load_s"] = {key: round(time.perf_counter() - start, 1)}
    result["setup"] = describe(model, config)
    print(json.dumps(result["setup"]), flush=True)
    for label, lengths in jobs:
        docs = ts.documents(lengths, args.review_fraction, config.vocab_size, seed=len(lengths))
        ts.reset_peak("cuda")
        try:
            times = ts.baseline_steps(model, docs, "cuda", args.warmup)
            executed = [ts.executed_flops(config, [[n]], [n], group_size=None, checkpointed=config.num_hidden_layers,
                                          review_tokens=None) for n in lengths]  # full attention, logits everywhere
            entry = ts.summarize(times, [[n] for n in lengths], config, peak, ts.peak_gb("cuda"), executed)
            entry.update(peak_host_pinned_gb=ts.peak_host_pinned_gb("cuda"), rows=len(lengths),
                         warmup_rows=args.warmup, step_s=[round(t, 3) for t in times])
        except Exception as exc:  # noqa: BLE001 - OOM is a result here, anything else is re-raised
            if not ts.is_oom(exc):
                raise
            entry = {"oom": True, "peak_gb": ts.peak_gb("cuda")}
        result[label] = {k: v for k, v in (like or {}).get(label, {}).items() if isinstance(v, dict)}
        result[label][key] = entry
        compare(result[label], key)
        print(label, json.dumps(result[label]), flush=True)
        Path(args.out).write_text(json.dumps(result, indent=1))  # after each job: a later failure keeps it


if __name__ == "__main__":
    main()
