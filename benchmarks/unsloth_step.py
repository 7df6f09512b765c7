"""Unsloth beside train_step.py (issue 19): the same random-weight Llama-2 checkpoint, documents and step protocol as
train_step.py's baseline, trained through unsloth's FastLanguageModel. This script only builds unsloth's model: the
jobs, timing, summary, OOM handling and JSON writing are train_step.py's own (train_step.run_variant with
kind="baseline", i.e. train_step.baseline_steps: one document per optimizer step, labels on its last
review_fraction, bf16 autocast, torch AdamW, --warmup untimed then --steps timed, median step, tokens/s of real
tokens, peak memory and peak pinned host memory, each step's time). A script of its own because importing unsloth
patches transformers and peft for the whole process: it runs after train_step.py, in the same machine session, on the
checkpoint train_step.py built (same --work).

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
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lightning_review.model.loading import EMBEDDINGS_AND_NORMS, LORA_TARGETS  # noqa: E402 - imports no transformers

KEY = "unsloth"  # its entry in each job, beside the --like run's
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
    parser.set_defaults(device="cuda", quantize=True, search=0, clock_interval_ms=1000, passes=1)  # what train_step.run_variant reads besides
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


def jobs_of(args: argparse.Namespace, like: dict | None) -> list[tuple[str, list[int], int]]:
    """(label, document lengths, row length) per job: train_step.document_jobs, as train_step.py built the same
    jobs (the --like run's mix lengths included)."""
    from train_step import document_jobs

    like = like or {}
    jobs = document_jobs([int(s) for s in str(args.seqs).split(",") if s], args.warmup + args.steps,
                         like.get("mix_lengths"), like.get("args", {}).get("mix_row"))
    if not jobs:
        raise SystemExit(f"{args.like or '--seqs'}: no job (no seqs and no mix_lengths)")
    return jobs


def expected_trainable(config, r: int) -> int:
    """The baseline's trainable parameters: LoRA on the 7 projections, embed_tokens, every RMSNorm."""
    from train_step import lora_parameters_per_layer

    h, layers = config.hidden_size, config.num_hidden_layers
    return layers * lora_parameters_per_layer(config, r) + config.vocab_size * h + (2 * layers + 1) * h


def load_unsloth(checkpoint: Path, context: int, device: str, quantize: bool, *, lora_dropout: float,
                 offload_dir: Path):
    """train_step.run_variant's ``load``: FastLanguageModel with the baseline's 4-bit NF4, LoRA and trained
    embeddings and norms."""
    import torch
    from unsloth import FastLanguageModel

    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(checkpoint)
    factor = max(1.0, math.ceil(context / config.max_position_embeddings))  # as train_step.load_baseline
    model, _ = FastLanguageModel.from_pretrained(
        str(checkpoint), max_seq_length=int(config.max_position_embeddings * factor), dtype=torch.bfloat16,
        load_in_4bit=quantize, local_files_only=True, device_map={"": device}, use_gradient_checkpointing="unsloth",
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
    load = partial(load_unsloth, lora_dropout=args.lora_dropout, offload_dir=work / "unsloth_offload")
    time_jobs(args, like, jobs, checkpoint, config, result, load, lambda model: describe(model, config))


def time_jobs(args: argparse.Namespace, like: dict | None, jobs: list[tuple[str, list[int], int]], checkpoint: Path,
              config, result: dict, load, setup) -> None:
    """The model ``load`` builds, timed by train_step.py's own step loop (train_step.run_variant, kind "baseline")
    on ``jobs``; ``result["setup"]`` is ``setup(model)``. Each job's entry goes beside the --like run's entries of
    that job, with compare's ratios; ``args.out`` is written after each job and at the end."""
    import train_step as ts

    for label, _, _ in jobs:
        result[label] = {k: v for k, v in (like or {}).get(label, {}).items() if isinstance(v, dict)}

    def record_setup(model) -> None:
        result["setup"] = setup(model)
        print(json.dumps(result["setup"]), flush=True)

    context = max(max(max(lengths) for _, lengths, _ in jobs), config.max_position_embeddings)
    ts.run_variant(KEY, load, checkpoint, context, jobs, args, config, result.get("peak_bf16_tflops"), result,
                   kind="baseline", loaded=record_setup)
    for label, _, _ in jobs:
        compare(result[label], KEY)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
