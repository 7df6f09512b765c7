"""bitsandbytes' NF4 dequantization against lightning_review.model.nf4_dequant's single Triton kernel.

The fused LoRA path dequantizes each 4-bit base weight in forward and backward (fused_lora ``_base_weight``): in a
13B step at 8K on an H200, 800 calls of ``bitsandbytes.functional.dequantize_4bit``, each, with the nested absmax
our loader uses, three kernels (the absmax's 8-bit dequantization, the ``add_`` of its offset, the NF4 pass) of
about 50 us together, against a floor of 14-37 us. For one decoder layer's seven weights ([out, in]: q/k/v/o
5120 x 5120, gate/up 13824 x 5120, down 5120 x 13824 at 13B), quantized by bitsandbytes (NF4, blocksize
``--blocksize``, double quantization), this times both (triton.testing.do_bench, median ms), checks they are equal,
and gives the floor: the packed bytes, the absmax codes and scales read and the ``--dtype`` weight written once at
``--bandwidth_tbs``.

    python benchmarks/dequant.py --shape 13b --out dequant_13b_h200.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def weight_shapes(shape: str) -> dict[str, tuple[int, int]]:
    """name -> [out_features, in_features] of one decoder layer's seven base weights."""
    from lora_parts import projection_shapes

    return {name: (n_out, n_in) for name, (n_in, n_out) in projection_shapes(shape).items()}


def floor_ms(out_features: int, in_features: int, blocksize: int, nested: bool, out_bytes: int,
             bandwidth: float, blocksize2: int = 256) -> float:
    """Milliseconds to move a dequantization's bytes once at ``bandwidth`` (B/s): the packed 4-bit weight, its
    absmax (8-bit codes, their fp32 second-level scales and offset when nested; fp32 otherwise), the weight out."""
    n = out_features * in_features
    blocks = math.ceil(n / blocksize)
    absmax = blocks + 4 * math.ceil(blocks / blocksize2) + 4 if nested else 4 * blocks
    return 1e3 * ((n + 1) // 2 + absmax + n * out_bytes) / bandwidth


def time_weight(out_features: int, in_features: int, blocksize: int, nested: bool, dtype: torch.dtype,
                device: str) -> dict:
    """Median ms of bitsandbytes' dequantize_4bit (to ``dtype``) and of dequantize_nf4 on one random weight, and
    whether their results are bitwise equal."""
    import bitsandbytes.functional as bnb_functional
    from lever_costs import median_ms

    from lightning_review.model.nf4_dequant import dequantize_nf4

    g = torch.Generator(device=device).manual_seed(0)
    w = (torch.randn(out_features, in_features, device=device, generator=g) * 0.02).to(dtype)
    packed, state = bnb_functional.quantize_4bit(w, blocksize=blocksize, compress_statistics=nested,
                                                 quant_type="nf4")
    del w
    out = torch.empty(out_features, in_features, device=device, dtype=dtype)
    equal = torch.equal(dequantize_nf4(packed, state, dtype), bnb_functional.dequantize_4bit(packed, state).to(dtype))
    return {"bitsandbytes_ms": round(median_ms(lambda: bnb_functional.dequantize_4bit(packed, state), device), 4),
            "triton_ms": round(median_ms(lambda: dequantize_nf4(packed, state, dtype, out=out), device), 4),
            "triton_alloc_ms": round(median_ms(lambda: dequantize_nf4(packed, state, dtype), device), 4),
            "equal": equal}


def per_layer(weights: dict[str, dict]) -> dict[str, float]:
    """Sums over a layer's weights of each timing (and the floor)."""
    keys = ("bitsandbytes_ms", "triton_ms", "triton_alloc_ms", "floor_ms")
    return {key: round(sum(w[key] for w in weights.values()), 4) for key in keys}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="13b", choices=["7b", "13b"])
    parser.add_argument("--blocksize", type=int, default=64)
    parser.add_argument("--no-nested", dest="nested", action="store_false", help="no double quantization")
    parser.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    parser.add_argument("--bandwidth_tbs", type=float, default=4.8, help="H200 HBM3e")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="dequant.json")
    args = parser.parse_args(argv)
    dtype = DTYPES[args.dtype]
    result = {"shape": args.shape, "blocksize": args.blocksize, "nested": args.nested, "dtype": args.dtype,
              "device": args.device, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
              "bandwidth_tbs": args.bandwidth_tbs, "command": " ".join(sys.argv), "weights": {}}
    if args.device == "cuda":
        result["device_name"] = torch.cuda.get_device_name()
    for name, (n_out, n_in) in weight_shapes(args.shape).items():
        entry = time_weight(n_out, n_in, args.blocksize, args.nested, dtype, args.device)
        entry["floor_ms"] = round(floor_ms(n_out, n_in, args.blocksize, args.nested, dtype.itemsize,
                                           args.bandwidth_tbs * 1e12), 4)
        result["weights"][name] = entry
        print(f"{name:10s} {n_out}x{n_in}: bitsandbytes {entry['bitsandbytes_ms']:.4f} ms, "
              f"triton {entry['triton_ms']:.4f} ms, floor {entry['floor_ms']:.4f} ms, equal {entry['equal']}")
    result["per_layer"] = layer = per_layer(result["weights"])
    print(f"per layer: bitsandbytes {layer['bitsandbytes_ms']:.4f} ms, triton {layer['triton_ms']:.4f} ms "
          f"({layer['triton_alloc_ms']:.4f} allocating), floor {layer['floor_ms']:.4f} ms")
    Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
