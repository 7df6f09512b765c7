"""Each piece of the fused LoRA path timed alone, beside the time its bytes take at the memory bandwidth.

lever_costs.py times a whole LoRA projection forward and backward minus its base layer; at 13B 8K that overhead is
about 275 ms of a 1.27 s step (benchmarks/RESULTS.md), where moving its tensors once would take about 75 ms. This
says which piece is far from its floor. For each projection shape of a model (q/k/v/o, gate/up, down) on
``--tokens`` rows, with plain tensors (no autograd, no module), bf16, rank ``--rank``:

forward: ``base`` x W^T; ``down_nodrop`` x A^T; ``down_dropout`` dropout(x) A^T with torch's dropout;
``down_kernel`` the same with the mask drawn in lora_kernels' Triton kernel; ``add_lora`` out += s down B^T (the
in-place addmm_ the fused path makes);
backward: ``base_grad`` grad W; ``grad_down`` grad B; ``grad_b`` grad^T down; ``grad_a_nodrop`` grad_down^T x;
``grad_a_kernel`` the same under the kernel's mask; ``input_grad_nodrop`` grad_x += grad_down A;
``input_grad_kernel`` the same under the mask, in place; ``grads_kernel`` the last two kernels in one, from one
draw of the mask (lora_kernels.add_dropout_lora_grads_); ``base_grad_and_down`` grad [W, B] as one matmul (the base
input gradient and grad_down from one read of grad: a lever, not built).
Accumulating in the big matmul instead (beta 1: cuBLAS reads the tensor it adds to in its epilogue, under the
compute): forward ``lora_out`` s down B^T written once, then ``base_beta1`` out += x W^T (what the fused path does
now); backward ``base_grad_beta1`` grad_x += grad W (with the masked LoRA input gradient written once first, which
measured slower than input_grad_kernel's add in place: benchmarks/RESULTS.md, session 11).

``--sweep`` also times each dropout kernel on candidate launch shapes (lora_kernels.Tiles) at the model's two input
widths (hidden and intermediate) and prints the best per kernel, against the shapes the library uses now.

Each entry: median ms (triton.testing.do_bench) and ``floor_ms``, the bytes it must read and write once at
``--bandwidth_tbs`` (matmuls of rank 64 are memory-bound; the base matmuls are compute-bound, their floor is FLOPs at
``--peak_tflops``).

    python benchmarks/lora_parts.py --shape 13b --tokens 8192 --out lora_parts_13b_8192_h200.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))


def projection_shapes(shape: str) -> dict[str, tuple[int, int]]:
    """name -> (in_features, out_features) of one decoder layer's seven projections."""
    from shapes import llama_config

    config = llama_config(shape)
    hidden, inter = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * (hidden // config.num_attention_heads)
    return {"q_proj": (hidden, hidden), "k_proj": (hidden, kv), "v_proj": (hidden, kv), "o_proj": (hidden, hidden),
            "gate_proj": (hidden, inter), "up_proj": (hidden, inter), "down_proj": (inter, hidden)}


def piece_floors(tokens: int, n_in: int, n_out: int, rank: int, bandwidth: float, peak: float) -> dict[str, float]:
    """Milliseconds each piece takes at least: bf16 bytes read + written once / bandwidth (B/s), or the base
    matmuls' FLOPs / peak (FLOP/s)."""
    b = 2  # bf16
    x, out, low = tokens * n_in * b, tokens * n_out * b, tokens * rank * b
    a, w_b = rank * n_in * b, n_out * rank * b
    base = 2 * tokens * n_in * n_out / peak
    moved = {"down_nodrop": x + a + low, "down_dropout": x + a + low, "down_kernel": x + a + low,
             "add_lora": 2 * out + low + w_b, "grad_down": out + w_b + low, "grad_b": out + low + 2 * w_b,
             "grad_a_nodrop": low + x + 2 * a, "grad_a_kernel": low + x + 2 * a,
             "input_grad_nodrop": 2 * x + low + a, "input_grad_kernel": 2 * x + low + a,
             "grads_kernel": 3 * x + low + 3 * a,
             "lora_out": out + low + w_b}
    floors = {name: 1e3 * size / bandwidth for name, size in moved.items()}
    floors.update(base=1e3 * base, base_grad=1e3 * base, base_grad_and_down=1e3 * base * (n_in + rank) / n_in,
                  base_beta1=1e3 * base, base_grad_beta1=1e3 * base)
    return floors


def time_pieces(tokens: int, n_in: int, n_out: int, rank: int, p: float, device: str,
                kernels: bool) -> dict[str, float]:
    """Median ms of each piece on random bf16 tensors of these sizes (see the module docstring)."""
    from lever_costs import median_ms

    dtype, scaling = (torch.bfloat16 if device == "cuda" else torch.float32), 0.25  # CPU bf16 matmuls crawl
    g = torch.Generator(device=device).manual_seed(0)

    def rand(*size):
        return torch.randn(*size, device=device, dtype=dtype, generator=g)

    x, w, a, b = rand(tokens, n_in), rand(n_out, n_in), rand(rank, n_in), rand(n_out, rank)
    grad, down, grad_down = rand(tokens, n_out), rand(tokens, rank), rand(tokens, rank)
    out, grad_x = rand(tokens, n_out), rand(tokens, n_in)
    w_and_b = torch.cat([w, b], dim=1)  # [out, in + r]
    pieces = {
        "base": lambda: F.linear(x, w),
        "down_nodrop": lambda: F.linear(x, a),
        "down_dropout": lambda: F.linear(F.dropout(x, p, training=True), a),
        "add_lora": lambda: out.addmm_(down, b.t(), alpha=scaling),
        "base_grad": lambda: grad @ w,
        "grad_down": lambda: (grad @ b).mul_(scaling),
        "grad_b": lambda: (grad.t() @ down).mul_(scaling),
        "grad_a_nodrop": lambda: grad_down.t() @ x,
        "input_grad_nodrop": lambda: grad_x.addmm_(grad_down, a),
        "base_grad_and_down": lambda: grad @ w_and_b,
        "lora_out": lambda: torch.mm(down, b.t()),
        "base_beta1": lambda: out.addmm_(x, w.t()),
        "base_grad_beta1": lambda: grad_x.addmm_(grad, w),
    }
    if kernels:
        from lightning_review.model.lora_kernels import (add_dropout_lora_grads_, add_dropout_lora_input_grad_,
                                                         dropout_lora_a_grad, dropout_lora_down, new_seed)

        seed = new_seed(x.device)
        pieces.update(down_kernel=lambda: dropout_lora_down(x, a, seed, p),
                      grad_a_kernel=lambda: dropout_lora_a_grad(grad_down, x, seed, p),
                      input_grad_kernel=lambda: add_dropout_lora_input_grad_(grad_x, grad_down, a, seed, p),
                      grads_kernel=lambda: add_dropout_lora_grads_(grad_x, grad_down, x, a, seed, p))
    return {name: round(median_ms(fn, device), 4) for name, fn in pieces.items()}


def candidate_tiles() -> dict[str, list]:
    """Launch shapes to try per kernel: the library's own first, then (rows, cols, warps, stages, splits) around it."""
    from lightning_review.model.lora_kernels import TILES, Tiles

    down = [(64, 64, 4, 3, 1), (32, 64, 4, 3, 1), (64, 128, 4, 3, 1), (64, 64, 4, 3, 2), (64, 64, 4, 3, 4),
            (64, 128, 8, 3, 2), (128, 64, 8, 3, 2), (128, 128, 8, 3, 4), (32, 128, 4, 4, 2), (64, 128, 4, 4, 4),
            (128, 64, 4, 3, 4), (64, 256, 8, 3, 2), (64, 64, 4, 4, 8), (128, 128, 8, 4, 8)]
    a_grad = [(64, 64, 4, 3, 4), (64, 128, 4, 3, 4), (128, 64, 4, 3, 4), (64, 64, 4, 3, 8), (64, 128, 8, 3, 4),
              (128, 128, 8, 3, 4), (32, 128, 4, 4, 4), (64, 256, 8, 3, 4), (64, 128, 4, 4, 2), (128, 128, 8, 4, 2),
              (64, 64, 4, 2, 2), (64, 128, 4, 3, 8)]
    input_grad = [(64, 64, 4, 3, 1), (64, 128, 4, 3, 1), (128, 64, 4, 3, 1), (128, 128, 8, 3, 1),
                  (32, 128, 4, 3, 1), (64, 256, 8, 3, 1), (128, 256, 8, 3, 1), (64, 128, 8, 2, 1), (32, 256, 4, 2, 1),
                  (128, 64, 8, 2, 1)]

    grads = [(32, 128, 4, 3, 8), (64, 128, 4, 3, 8), (64, 64, 4, 3, 8), (64, 128, 8, 3, 8), (32, 64, 4, 3, 8),
             (16, 128, 4, 3, 8), (32, 128, 4, 3, 16), (32, 256, 4, 3, 8), (32, 128, 2, 3, 8), (32, 128, 4, 4, 8),
             (16, 256, 4, 3, 8), (32, 128, 4, 3, 4)]

    def with_current(name, shapes):
        tiles = [Tiles(*t) for t in shapes]
        return [TILES[name]] + [t for t in tiles if t != TILES[name]]

    return {"down": with_current("down", down), "a_grad": with_current("a_grad", a_grad),
            "input_grad": with_current("input_grad", input_grad), "grads": with_current("grads", grads)}


def kernel_inputs(tokens: int, widths: dict[int, int], rank: int, device: str = "cuda",
                  dtype: torch.dtype = torch.bfloat16) -> dict[int, tuple]:
    """Per input width: random (x, A, grad_down) and a seed, made once for every kernel and launch shape timed."""
    from lightning_review.model import lora_kernels as k

    g = torch.Generator(device=device).manual_seed(0)

    def rand(*size):
        return torch.randn(*size, device=device, dtype=dtype, generator=g)

    return {n_in: (rand(tokens, n_in), rand(rank, n_in), rand(tokens, rank), k.new_seed(torch.device(device)),
                   rand(tokens, n_in)) for n_in in widths}


def kernel_call(kernel: str, inputs: tuple, p: float, tiles=None):
    """The call of one dropout kernel on ``inputs`` (kernel_inputs' tuple); ``tiles`` None: the library's own."""
    from lightning_review.model import lora_kernels as k

    x, a, grad_down, seed, grad_x = inputs
    return {"down": lambda: k.dropout_lora_down(x, a, seed, p, tiles=tiles),
            "a_grad": lambda: k.dropout_lora_a_grad(grad_down, x, seed, p, tiles=tiles),
            "input_grad": lambda: k.add_dropout_lora_input_grad_(grad_x, grad_down, a, seed, p, tiles=tiles),
            "grads": lambda: k.add_dropout_lora_grads_(grad_x, grad_down, x, a, seed, p, tiles=tiles)}[kernel]


def sweep_tiles(tokens: int, widths: dict[int, int], rank: int, p: float, only: list[str] | None = None) -> dict:
    """Median ms of each dropout kernel on each candidate launch shape, per input width, and the per-layer sum
    (``widths``: how many of a layer's projections take each width)."""
    from lever_costs import median_ms

    inputs = kernel_inputs(tokens, widths, rank)
    result: dict = {}
    for kernel, candidates in candidate_tiles().items():
        if only and kernel not in only:
            continue
        rows = []
        for tiles in candidates:
            try:
                per_width = {n_in: median_ms(kernel_call(kernel, inputs[n_in], p, tiles), "cuda") for n_in in widths}
            except Exception as error:  # a launch shape that does not compile (registers, shared memory)
                rows.append({"tiles": tiles._asdict(), "error": f"{type(error).__name__}: {str(error)[:120]}"})
                continue
            per_layer = sum(count * per_width[n_in] for n_in, count in widths.items())
            rows.append({"tiles": tiles._asdict(), "ms_by_width": {n: round(ms, 4) for n, ms in per_width.items()},
                         "per_layer_ms": round(per_layer, 4)})
        timed = [r for r in rows if "per_layer_ms" in r]
        result[kernel] = {"current": rows[0], "best": min(timed, key=lambda r: r["per_layer_ms"]) if timed else None,
                          "all": rows}
    return result


def time_rounds(tokens: int, widths: dict[int, int], rank: int, p: float, rounds: int) -> dict[str, float]:
    """Per-layer ms of each dropout kernel on the library's launch shapes with ``rounds`` Philox rounds."""
    from lever_costs import median_ms

    from lightning_review.model import lora_kernels as k

    inputs = kernel_inputs(tokens, widths, rank)
    saved, k.PHILOX_ROUNDS = k.PHILOX_ROUNDS, rounds
    try:
        return {kernel: round(sum(count * median_ms(kernel_call(kernel, inputs[n_in], p), "cuda")
                                  for n_in, count in widths.items()), 4)
                for kernel in ("down", "a_grad", "input_grad", "grads")}
    finally:
        k.PHILOX_ROUNDS = saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="13b", choices=["7b", "13b"])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--p", type=float, default=0.05, help="LoRA dropout")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bandwidth_tbs", type=float, default=4.8, help="HBM bandwidth, TB/s (H200: 4.8)")
    parser.add_argument("--peak_tflops", type=float, default=0.0,
                        help="bf16 matmul peak; 0: measured (peak_flops.py) on CUDA, 1 TFLOP/s elsewhere")
    parser.add_argument("--sweep", action="store_true", help="also time the dropout kernels' launch shapes (CUDA)")
    parser.add_argument("--sweep_kernels", default="", help="--sweep only these (comma-separated: down, a_grad, "
                        "input_grad, grads), and no Philox rounds comparison")
    parser.add_argument("--out", default="lora_parts.json")
    args = parser.parse_args(argv)
    peak = args.peak_tflops
    if not peak:
        if args.device == "cuda":
            from peak_flops import measure

            peak = measure()
        else:
            peak = 1.0
    kernels = args.device == "cuda"  # the interpreter would time Python, not the kernels
    result = {"shape": args.shape, "tokens": args.tokens, "rank": args.rank, "p": args.p, "device": args.device,
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "peak_tflops": round(peak, 1),
              "bandwidth_tbs": args.bandwidth_tbs, "command": " ".join(sys.argv), "projections": {}}
    if args.device == "cuda":
        result["device_name"] = torch.cuda.get_device_name()
    totals: dict[str, float] = {}
    for name, (n_in, n_out) in projection_shapes(args.shape).items():
        times = time_pieces(args.tokens, n_in, n_out, args.rank, args.p, args.device, kernels)
        floors = piece_floors(args.tokens, n_in, n_out, args.rank, args.bandwidth_tbs * 1e12, peak * 1e12)
        result["projections"][name] = {piece: {"ms": ms, "floor_ms": round(floors[piece], 4)}
                                       for piece, ms in times.items()}
        for piece, ms in times.items():
            totals[piece] = totals.get(piece, 0.0) + ms
            totals[f"{piece}_floor"] = totals.get(f"{piece}_floor", 0.0) + floors[piece]
    result["per_layer_ms"] = {k: round(v, 3) for k, v in totals.items()}
    if args.sweep and args.device == "cuda":
        widths: dict[int, int] = {}
        for n_in, _ in projection_shapes(args.shape).values():
            widths[n_in] = widths.get(n_in, 0) + 1
        only = [k for k in args.sweep_kernels.split(",") if k]
        result["tile_sweep"] = sweep_tiles(args.tokens, widths, args.rank, args.p, only)
        # 10 twice, before and after 7: the spread of the same code
        if not only:
            result["philox_rounds_ms"] = [{"rounds": r, **time_rounds(args.tokens, widths, args.rank, args.p, r)}
                                          for r in (10, 7, 10)]
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"{'piece':<20}{'ms / layer':>12}{'floor':>10}{'x floor':>9}")
    for piece in [k for k in totals if not k.endswith("_floor")]:
        ms, floor = totals[piece], totals[f"{piece}_floor"]
        print(f"{piece:<20}{ms:>12.3f}{floor:>10.3f}{ms / floor if floor else float('nan'):>9.1f}")
    for row in result.get("philox_rounds_ms", []):
        print(f"Philox rounds: ms a layer {row}")
    for kernel, sweep in result.get("tile_sweep", {}).items():
        best, current = sweep["best"], sweep["current"]
        print(f"{kernel}: now {current.get('per_layer_ms')} ms a layer {tuple(current['tiles'].values())}, "
              f"best {best and best['per_layer_ms']} {best and tuple(best['tiles'].values())}")


if __name__ == "__main__":
    main()
