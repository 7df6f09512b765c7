"""What one decoder layer keeps for backward when it is not checkpointed: bytes per token, by module, for each
setting that changes it (kernels, LoRA dropout and how it is kept). This decides how many layers ``checkpointed_layers`` can leave out.

    python benchmarks/activation_memory.py --shape 13b --tokens 4096 --out activation_memory_13b.json

A one-layer model of the shape's width (random weights, 4-bit NF4, LoRA r=64, trainable norms, S2-Attn) runs one
forward in training mode under bf16 autocast without gradient checkpointing; every tensor autograd saves is counted
once (by storage) and charged to the innermost module running when it was saved. On CUDA the allocator's growth over
the forward is reported too. On CPU, attention runs through SDPA's math path, which keeps the attention matrix that
the GPU's flash kernel does not: read the CPU numbers without the ``self_attn`` line.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def one_layer_checkpoint(shape: str, directory: Path) -> Path:
    from transformers import AutoTokenizer, LlamaForCausalLM

    from lightning_review.artifacts.model_sources import TINY_LLAMA, resolve
    from shapes import llama_config

    if (directory / "config.json").is_file():
        return directory
    config = llama_config(shape)
    config.num_hidden_layers = 1
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(directory)
    AutoTokenizer.from_pretrained(resolve(TINY_LLAMA)).save_pretrained(directory)
    return directory


def saved_bytes_by_module(module, batch: dict, device: str) -> tuple[dict[str, int], int | None]:
    """Bytes autograd saves during one forward, by innermost module; and the allocator's growth (CUDA only)."""
    names = {m: name for name, m in module.model.named_modules()}
    stack = ["(outside modules)"]
    handles = []
    for m in module.model.modules():
        handles.append(m.register_forward_pre_hook(lambda m, args: stack.append(names[m])))
        handles.append(m.register_forward_hook(lambda m, args, out: stack.pop() and None))  # None: output kept
    seen: set[int] = set()
    by_module: collections.Counter = collections.Counter()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            name = stack[-1].split("layers.0.")[-1]
            for noise in (".base_model.model", "base_model.model.", ".modules_to_save.default", ".default",
                          ".base_layer"):
                name = name.replace(noise, "")
            by_module[name] += storage.nbytes()
        return t

    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast(device, dtype=torch.bfloat16):
        loss = module(batch)
    grown = torch.cuda.memory_allocated() - before if device == "cuda" else None
    for handle in handles:
        handle.remove()
    del loss  # frees the graph and what it saved
    return dict(by_module), grown


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="13b", choices=["7b", "13b"])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--work", default="/tmp/activation_memory")
    parser.add_argument("--settings", default="none/0.05/peft,liger/0.05/peft,liger/0.05/regenerate,liger/0/peft",
                        help="kernels/lora_dropout/dropout implementation (liger on CUDA only; regenerate: "
                             "model.regenerate_lora_dropout)")
    parser.add_argument("--out", default="activation_memory.json")
    args = parser.parse_args()
    from lightning_review.training.module import LongQLoRAModule

    checkpoint = one_layer_checkpoint(args.shape, Path(args.work) / f"{args.shape}-one-layer")
    from transformers import AutoConfig

    hidden = AutoConfig.from_pretrained(checkpoint).hidden_size
    n = args.tokens
    ids = torch.randint(100, 32000, (1, n), device=args.device)
    labels = ids.clone()
    labels[:, : n - n // 10] = -100
    batch = dict(input_ids=ids, position_ids=torch.arange(n, device=args.device)[None], doc_lens=[[n]],
                 labels=labels)
    result = {"shape": args.shape, "tokens": n, "hidden": hidden, "device": args.device, "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d"), "settings": {}}
    if args.device == "cuda":
        result["device_name"] = torch.cuda.get_device_name()
    for setting in args.settings.split(","):
        kernels, dropout, implementation = setting.split("/")
        module = LongQLoRAModule(checkpoint_dir=str(checkpoint), max_seq_length=n, model_max_length=n,
                                 lora_dropout=float(dropout),
                                 gradient_checkpointing=False, kernels=kernels, loss_chunk_tokens=1024,
                                 regenerate_lora_dropout=implementation == "regenerate")
        module.build(args.device)
        by_module, grown = saved_bytes_by_module(module, batch, args.device)
        per_token_hidden = {k: round(v / n / hidden, 2) for k, v in sorted(by_module.items(), key=lambda x: -x[1])}
        layer = sum(v for k, v in by_module.items() if k.startswith(("self_attn", "mlp", "input_layernorm",
                                                                      "post_attention_layernorm")))
        entry = {"layer_bytes_per_token": round(layer / n), "layer_bytes_per_token_per_hidden": round(layer / n / hidden, 2),
                 "by_module_bytes_per_token_per_hidden": per_token_hidden}
        if grown is not None:
            entry["cuda_allocated_growth_bytes_per_token"] = round(grown / n)
        result["settings"][setting] = entry
        print(setting, {k: v for k, v in entry.items() if not k.startswith("by_module")}, flush=True)
        del module
        if args.device == "cuda":
            torch.cuda.empty_cache()
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
