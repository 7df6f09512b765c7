"""What the untried levers could save at most: the time one 13B/7B decoder layer spends on 4-bit dequantization,
on RoPE (transformers' against Liger's fused kernel) and on the LoRA branches, per layer and per optimizer step.

    python benchmarks/lever_costs.py --shape 13b --tokens 8192 --out lever_costs_13b.json

A one-layer model of the shape's width (random weights, 4-bit NF4 with double quantization, LoRA r=64 on every
linear layer, as benchmarks/train_step.py's ``ours``) is built through LongQLoRAModule; its pieces are timed alone on
``--tokens`` tokens (triton.testing.do_bench, median ms, bf16 autocast):
- dequantize: bitsandbytes' ``dequantize_4bit`` of the layer's seven weights. bitsandbytes dequantizes each weight
  once per matmul pass: forward, the recomputing forward of a checkpointed layer, backward (grad of the input).
  Keeping the weights dequantized from the recomputation to the backward would save one pass, never more.
- rope: ``apply_rotary_pos_emb`` of q and k, forward and forward+backward; Liger's ``liger_rotary_pos_emb`` beside it
  where liger-kernel is installed.
- lora: forward, and forward+backward, of each peft LoRA projection minus the same of its 4-bit base layer alone
  (dropout, lora_A, lora_B, scaling, add, peft's copy of the base output; the input's gradient in both): what a
  fused LoRA kernel could shrink. Measured on peft's forward (``lora_ms``), then the same layers switched to
  lightning_review.model.fused_lora (``fused_lora_ms``, what that fusion left); on CUDA with Triton also with the
  masks drawn inside Triton kernels (``fused_lora_dropout_kernel_ms``, model.lora_dropout_kernel=triton), and the
  fused path without dropout (``fused_lora_no_dropout_ms``: the floor any dropout kernel could reach).
Per step = per layer x layers x passes (3 with every layer checkpointed, 2 without; backward counted once). Compare
with the step times of benchmarks/train_step.py measured on the same GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def median_ms(fn, device: str) -> float:
    """Median milliseconds of ``fn``: triton's do_bench on CUDA, wall-clock on CPU (for the --device cpu check)."""
    if device == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median"))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def forward_backward(fn, *inputs: torch.Tensor):
    """A callable running ``fn(*inputs)`` forward and backward with a fixed upstream gradient."""
    grads = {}

    def run():
        for t in inputs:
            t.grad = None
        out = fn(*inputs)
        outs = out if isinstance(out, tuple) else (out,)
        if not grads:
            grads.update({i: torch.randn_like(o) for i, o in enumerate(outs)})
        torch.autograd.backward(outs, [grads[i] for i in range(len(outs))])

    return run


def dequantize_ms(layer, device: str) -> dict[str, float]:
    import bitsandbytes.functional as F

    out = {}
    for name, module in layer.named_modules():
        weight = getattr(module, "weight", None)
        if getattr(weight, "quant_state", None) is not None:
            out[name.replace(".base_layer", "")] = median_ms(
                lambda w=weight: F.dequantize_4bit(w.data, w.quant_state), device)
    return out


def rope_ms(config, tokens: int, device: str) -> dict[str, float]:
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    heads, dim = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    q = torch.randn(1, heads, tokens, dim, device=device, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(1, config.num_key_value_heads, tokens, dim, device=device, dtype=torch.bfloat16,
                    requires_grad=True)
    cos, sin = LlamaRotaryEmbedding(config).to(device)(q, torch.arange(tokens, device=device)[None])
    out = {"transformers_forward": median_ms(lambda: apply_rotary_pos_emb(q.detach(), k.detach(), cos, sin), device),
           "transformers_forward_backward": median_ms(
               forward_backward(lambda a, b: apply_rotary_pos_emb(a, b, cos, sin), q, k), device)}
    try:
        from liger_kernel.transformers.rope import liger_rotary_pos_emb
    except ImportError:
        return out
    reference = apply_rotary_pos_emb(q.detach(), k.detach(), cos, sin)
    fused = liger_rotary_pos_emb(q.detach(), k.detach(), cos, sin)
    out["liger_max_abs_difference"] = max(float((a - b).abs().max()) for a, b in zip(reference, fused))
    out["liger_forward"] = median_ms(lambda: liger_rotary_pos_emb(q.detach(), k.detach(), cos, sin), device)
    out["liger_forward_backward"] = median_ms(
        forward_backward(lambda a, b: liger_rotary_pos_emb(a, b, cos, sin), q, k), device)
    return out


def lora_ms(layer, tokens: int, device: str) -> dict[str, dict[str, float]]:
    from peft.tuners.lora import LoraLayer

    out = {}
    for name, module in layer.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        base = module.get_base_layer()
        x = torch.randn(1, tokens, base.in_features, device=device, dtype=torch.bfloat16, requires_grad=True)
        with torch.autocast(device, dtype=torch.bfloat16):
            times = {"forward_with_lora": median_ms(lambda: module(x), device),
                     "forward_base_only": median_ms(lambda: base(x), device),
                     "forward_backward_with_lora": median_ms(forward_backward(module, x), device),
                     "forward_backward_base_only": median_ms(forward_backward(base, x), device)}
        times["lora_overhead_forward"] = times["forward_with_lora"] - times["forward_base_only"]
        times["lora_overhead_forward_backward"] = (times["forward_backward_with_lora"]
                                                   - times["forward_backward_base_only"])
        out[name] = {k: round(v, 3) for k, v in times.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="13b", choices=["7b", "13b", "small"])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--work", default="/tmp/lever_costs")
    parser.add_argument("--out", default="lever_costs.json")
    parser.add_argument("--dropout_kernel_tiles", default="64x64",
                        help="rows x columns of x per program of the dropout kernels (model.lora_kernels), each timed: "
                             "e.g. 64x64,128x64,64x128; the first is reported as fused_lora_dropout_kernel")
    args = parser.parse_args()
    from transformers import AutoConfig

    from activation_memory import one_layer_checkpoint
    from lightning_review.model.fused_lora import use_fused_lora
    from lightning_review.model.loading import decoder_layers
    from lightning_review.training.module import LongQLoRAModule
    from shapes import llama_config

    checkpoint = one_layer_checkpoint(args.shape, Path(args.work) / f"{args.shape}-one-layer")
    # model_max_length: rows longer than the shape's 4,096 positions are refused without RoPE interpolation
    module = LongQLoRAModule(checkpoint_dir=str(checkpoint), max_seq_length=args.tokens, model_max_length=args.tokens,
                             lora_r=64, lora_alpha=16,
                             lora_dropout=0.05, gradient_checkpointing=False, kernels="none", fused_lora=False)
    module.build(args.device)
    module.train()
    (layer,) = decoder_layers(module.model)
    layers = llama_config(args.shape).num_hidden_layers
    result = {"shape": args.shape, "tokens": args.tokens, "layers": layers, "device": args.device,
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "args": vars(args)}
    if args.device == "cuda":
        result["device_name"] = torch.cuda.get_device_name()
    result["dequantize_ms"] = dequantize_ms(layer, args.device)
    result["rope_ms"] = rope_ms(AutoConfig.from_pretrained(checkpoint), args.tokens, args.device)
    variants = ["lora", "fused_lora"]
    result["lora_ms"] = lora_ms(layer, args.tokens, args.device)
    use_fused_lora(layer)
    result["fused_lora_ms"] = lora_ms(layer, args.tokens, args.device)
    lora_layers = [m for m in layer.modules() if hasattr(m, "dropout_kernel")]
    if args.device == "cuda" and importlib.util.find_spec("triton") is not None:
        from lightning_review.model import lora_kernels

        for m in lora_layers:
            m.dropout_kernel = True
        for i, tiles in enumerate(args.dropout_kernel_tiles.split(",")):
            rows, cols = (int(v) for v in tiles.split("x"))
            lora_kernels.TILES = {name: kernel_tiles._replace(rows=rows, cols=cols)
                                  for name, kernel_tiles in lora_kernels.TILES.items()}
            variant = "fused_lora_dropout_kernel" + ("" if i == 0 else f"_{tiles}")
            result[f"{variant}_ms"] = lora_ms(layer, args.tokens, args.device)
            variants.append(variant)
        for m in lora_layers:
            m.dropout_kernel = False
    for m in lora_layers:  # peft's Dropout, or folded into lora_A (model.lora_dropout) where not checkpointed
        dropout = m.lora_dropout["default"]
        if isinstance(dropout, torch.nn.Dropout):
            dropout.p = 0.0
        else:
            m.lora_A["default"].dropout_p = 0.0
    result["fused_lora_no_dropout_ms"] = lora_ms(layer, args.tokens, args.device)
    variants.append("fused_lora_no_dropout")
    per_layer = {"dequantize_one_pass": sum(result["dequantize_ms"].values()),
                 "rope_transformers_forward": result["rope_ms"]["transformers_forward"],
                 "rope_transformers_forward_backward": result["rope_ms"]["transformers_forward_backward"]}
    for variant in variants:
        for way in ("forward", "forward_backward"):
            per_layer[f"{variant}_overhead_{way}"] = sum(v[f"lora_overhead_{way}"]
                                                         for v in result[f"{variant}_ms"].values())
    if "liger_forward" in result["rope_ms"]:
        per_layer["rope_liger_forward"] = result["rope_ms"]["liger_forward"]
        per_layer["rope_liger_forward_backward"] = result["rope_ms"]["liger_forward_backward"]
    result["per_layer_ms"] = {k: round(v, 3) for k, v in per_layer.items()}
    steps = {}
    for checkpointed, forwards in (("every layer checkpointed", 2), ("none checkpointed", 1)):
        step = {"dequantize": per_layer["dequantize_one_pass"] * (forwards + 1),
                "dequantize_saved_by_keeping_one_pass": per_layer["dequantize_one_pass"] if forwards == 2 else 0.0}
        # a recomputing forward, then both ways
        for piece in ["rope_transformers", "rope_liger"] + [f"{variant}_overhead" for variant in variants]:
            if f"{piece}_forward" in per_layer:
                step[piece] = per_layer[f"{piece}_forward"] * (forwards - 1) + per_layer[f"{piece}_forward_backward"]
        steps[checkpointed] = {k: round(v * layers, 1) for k, v in step.items()}
    result["per_step_ms"] = steps
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("per_layer_ms", "per_step_ms")}, indent=1))


if __name__ == "__main__":
    main()
