"""Host time of one LoRA projection's call, the fused path against peft's forward, where the device work is nil.

Why: on an H200 the host queued a 13B step's forward in 355 ms against the device's 386 ms (step_gaps.py, session
13), and a 7B layer gives the device about half the work for the same host work, so there the host may set the
pace. A training step makes 7 LoRA calls a layer in forward and 7 more in a checkpoint's recomputation (13B: 560).
This times one call on a tiny layer on the CPU, one thread, so that nearly all of its time is Python and dispatch:
peft's forward, the fused path's whole forward (both without nn.Module's call), and ``_FusedLoRA.apply`` alone (what the fused path's checks add is the
difference), for a 4-bit base without dropout (the fused path then keeps its LoRA product for the recomputation).

    python benchmarks/host_overhead.py --out host_overhead_cpu.json

CPU host figures only: a GPU host adds kernel launches (and Triton's launcher) to both paths.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def microseconds(call, calls: int, repeats: int) -> float:
    """The median over ``repeats`` of the mean time of ``calls`` calls, in microseconds."""
    for _ in range(calls // 10):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def projection(quantize: bool, dropout: float):
    """A fused LoRA projection of the tiny demo Llama, in training mode, and an input for it."""
    from lightning_review.demo import tiny_llama_checkpoint
    from lightning_review.training.module import LongQLoRAModule

    module = LongQLoRAModule(checkpoint_dir=str(tiny_llama_checkpoint()), lora_r=8, max_seq_length=256,
                             s2_group_size=16, kernels="none", quantize=quantize, gradient_checkpointing=True,
                             lora_dropout=dropout)
    module.build("cpu")
    module.train()
    layer = next(m for m in module.model.modules() if type(m).__name__.startswith("Fused"))
    return layer, torch.randn(1, 8, layer.in_features, requires_grad=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--no-quantize", dest="quantize", action="store_false")
    parser.add_argument("--out", default="host_overhead.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from lightning_review.model import fused_lora

    layer, x = projection(args.quantize, args.dropout)
    peft_forward = type(layer).__mro__[1].forward
    adapter = layer.active_adapters[0]
    base = layer.get_base_layer()
    apply_args = (x, layer.lora_A[adapter].weight, layer.lora_B[adapter].weight,
                  fused_lora._Call(base, float(layer.scaling[adapter]), args.dropout, x.dtype, x.dtype))
    timings = {
        "peft_forward_us": microseconds(lambda: peft_forward(layer, x), args.calls, args.repeats),
        "fused_call_us": microseconds(lambda: type(layer).forward(layer, x), args.calls, args.repeats),
        "fused_apply_alone_us": microseconds(lambda: fused_lora._FusedLoRA.apply(*apply_args), args.calls,
                                             args.repeats),
    }
    timings["fused_checks_us"] = timings["fused_call_us"] - timings["fused_apply_alone_us"]
    result = {"command": "python benchmarks/host_overhead.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
              "torch": torch.__version__, "quantize": args.quantize, "dropout": args.dropout,
              **{k: round(v, 1) for k, v in timings.items()}}
    Path(args.out).write_text(json.dumps(result, indent=1))
    for key, value in result.items():
        print(f"{key}: {value}")
    return result


if __name__ == "__main__":
    main()
