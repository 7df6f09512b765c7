"""Forward+backward time of s2_attention's backends against full causal attention through PyTorch's SDPA.

Run on a GPU:  python benchmarks/attention.py --out results.json
Checks every backend against the dense reference first (bf16, outputs and gradients), then times
Llama-2-13B (40 x 128) and 7B (32 x 128) head shapes at 4K-32K tokens: one document per row, four of equal
length, and three of a length-mix row (``MIX_ROW``), for each backend.
Achieved TFLOP/s counts the attention pairs each variant really computes: 4 x pairs x head_dim x heads for the
forward, 2.5 times that for the backward (the usual flash-attention accounting).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
import torch.nn.functional as F

from lightning_review.model import attention
from lightning_review.model.attention import _groups_of_document, s2_attention


def pairs(doc_lens: list[int], group: int | None, heads: int) -> float:
    """Query-key pairs computed over all heads, half unshifted and half shifted."""
    total = 0
    for shifted in (False, True):
        for n in doc_lens:
            total += sum(L * (L + 1) // 2 for _, L in _groups_of_document(n, group, shifted))
    return total * heads / 2


def rolled_s2(q, k, v, group):
    """LongLoRA's original S2 (wrap-around roll of half the heads, grouped SDPA): the naive baseline."""
    b, h, n, d = q.shape
    half = h // 2

    def shift(t):
        return torch.cat([t[:, :half], t[:, half:].roll(-group // 2, dims=2)], 1)

    qs, ks, vs = (shift(t).reshape(b, h, n // group, group, d).transpose(1, 2).reshape(-1, h, group, d)
                  for t in (q, k, v))
    o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True)
    o = o.reshape(b, n // group, h, group, d).transpose(1, 2).reshape(b, h, n, d)
    return torch.cat([o[:, :half], o[:, half:].roll(group // 2, dims=2)], 1)


def grouped_all_flash(q, k, v, group, doc_lens):
    """``grouped`` as before session 14: every piece of a packed row outside cuDNN, whole groups included."""
    saved, attention.CUDNN_PIECES_FROM_GROUP = attention.CUDNN_PIECES_FROM_GROUP, None
    try:
        return s2_attention(q, k, v, group, doc_lens, backend="grouped")
    finally:
        attention.CUDNN_PIECES_FROM_GROUP = saved


def grouped_ragged_padded(q, k, v, group, doc_lens, multiple=256):
    """``grouped`` with a packed row's whole and half groups on cuDNN at any group size and its ragged pieces
    zero-padded to ``multiple`` tokens onto cuDNN too (``multiple=0``: ragged pieces on flash)."""
    saved = attention.CUDNN_PIECES_FROM_GROUP, attention.RAGGED_PIECES_PADDED_TO
    attention.CUDNN_PIECES_FROM_GROUP, attention.RAGGED_PIECES_PADDED_TO = 2, multiple
    try:
        return s2_attention(q, k, v, group, doc_lens, backend="grouped")
    finally:
        attention.CUDNN_PIECES_FROM_GROUP, attention.RAGGED_PIECES_PADDED_TO = saved


def rel_err(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def check(device):
    """bf16 outputs and gradients of each backend against the float32 dense reference."""
    torch.manual_seed(0)
    rows = []
    for lens, kv in (([[2048]], 8), ([[700, 1000, 300], [2048]], 8), ([[1500, 400]], 2)):
        b, h, n, d = len(lens), 8, 2048, 128
        q = torch.randn(b, h, n, d, device=device, dtype=torch.bfloat16, requires_grad=True)
        k = torch.randn(b, kv, n, d, device=device, dtype=torch.bfloat16, requires_grad=True)
        v = torch.randn(b, kv, n, d, device=device, dtype=torch.bfloat16, requires_grad=True)
        go = torch.randn(b, h, n, d, device=device, dtype=torch.bfloat16)
        real = torch.zeros(b, 1, n, 1, device=device, dtype=torch.bfloat16)
        for i, row in enumerate(lens):
            real[i, :, : sum(row)] = 1
        qf, kf, vf = (t.detach().float().requires_grad_() for t in (q, k, v))
        ref = s2_attention(qf, kf, vf, 512, lens, backend="reference")
        ref_g = torch.autograd.grad((ref * go.float() * real.float()).sum(), (qf, kf, vf))
        routed = {"grouped cudnn pieces": 0, "grouped ragged padded": 256}  # the threshold lowered to group 512
        for backend in ("grouped", *routed, "flex", "varlen"):
            try:
                out = (grouped_ragged_padded(q, k, v, 512, lens, routed[backend]) if backend in routed
                       else s2_attention(q, k, v, 512, lens, backend=backend))
            except Exception as exc:  # noqa: BLE001 - record a failing backend beside the others
                rows.append({"layout": lens, "kv_heads": kv, "backend": backend, "error": repr(exc)[:300]})
                print(f"check {backend}: failed: {exc!r}"[:300])
                continue
            g = torch.autograd.grad((out * go * real).sum(), (q, k, v))
            errs = [rel_err(out * real, ref * real)] + [rel_err(a, r) for a, r in zip(g, ref_g)]
            rows.append({"layout": lens, "kv_heads": kv, "backend": backend, "rel_err_out_dq_dk_dv": errs})
            print(f"check {backend:8s} {str(lens):28s} kv={kv}  rel err out/dq/dk/dv "
                  + " ".join(f"{e:.1e}" for e in errs))
            assert all(e < 2e-2 for e in errs), f"{backend} disagrees with the reference: {errs}"
    return rows


def bench(fn, leaves):
    """Median ms of forward+backward; q, k, v are (batch, heads, seq, dim) views of (batch, seq, heads, dim)
    leaves, the layout transformers' Llama attention hands over."""
    import triton.testing

    q, k, v = (t.transpose(1, 2) for t in leaves)
    go = torch.randn_like(q)

    def step():
        for t in leaves:
            t.grad = None
        fn(*(t.transpose(1, 2) for t in leaves)).backward(go)

    return triton.testing.do_bench(step, warmup=50, rep=300, return_mode="median")


VARIANTS = ["sdpa full causal", "rolled S2 (LongLoRA)", "s2 grouped 1 doc", "s2 flex 1 doc", "s2 varlen 1 doc",
            "s2 grouped 4 docs", "s2 grouped 4 docs, all flash", "s2 flex 4 docs", "s2 varlen 4 docs",
            "s2 grouped mix", "s2 grouped mix, all flash", "s2 grouped mix, ragged padded", "s2 flex mix",
            "s2 varlen mix", "full per-doc grouped 4 docs"]
# A row of the seed's length mix (benchmarks/train_step.py --mix): three papers packed into one row, as fractions of it.
MIX_ROW = (0.42, 0.36, 0.21)


def markdown_table(path: str) -> str:
    """The RESULTS.md table of a JSON this script wrote: ms / TFLOP/s / speed-up per model, length and variant."""
    with open(path) as f:
        rows = json.load(f)["results"]
    cells: dict[tuple[str, int], dict[str, dict]] = {}
    for r in rows:
        cells.setdefault((r["model"], r["seq"]), {})[r["variant"]] = r
    lines = ["| model | tokens | " + " | ".join(VARIANTS) + " |", "|---|---|" + "---|" * len(VARIANTS)]
    for (model, seq), by_variant in cells.items():
        row = [f"{r['ms']:.2f} / {r['tflops']:.0f} / **x{r['speedup_vs_sdpa_full']:.2f}**" if r else "OOM"
               for r in (by_variant.get(v) for v in VARIANTS)]
        lines.append(f"| {model} | {seq // 1024}K | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="attention.json")
    ap.add_argument("--seqs", default="4096,8192,16384,32768")
    ap.add_argument("--models", default="13B,7B")
    ap.add_argument("--table", help="print the markdown table of a results JSON and exit (no GPU needed)")
    args = ap.parse_args()
    if args.table:
        print(markdown_table(args.table))
        return
    device = torch.device("cuda")
    checks = check(device)
    results = []
    meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "python": platform.python_version(), "command": "python benchmarks/attention.py"}

    def save():
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "checks": checks, "results": results}, f, indent=1)

    for name, heads in [m for m in (("13B", 40), ("7B", 32)) if m[0] in args.models.split(",")]:
        for n in (int(s) for s in args.seqs.split(",")):
            group = n // 4
            leaves = [torch.randn(1, n, heads, 128, device=device, dtype=torch.bfloat16, requires_grad=True)
                      for _ in range(3)]
            four = [[n // 4] * 4]
            mix = [[int(n * f) for f in MIX_ROW]]
            variants = {
                "sdpa full causal": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                     [n], None),
                "rolled S2 (LongLoRA)": (lambda q, k, v: rolled_s2(q, k, v, group), [n], group),
                "s2 grouped 1 doc": (lambda q, k, v: s2_attention(q, k, v, group, backend="grouped"), [n], group),
                "s2 flex 1 doc": (lambda q, k, v: s2_attention(q, k, v, group, backend="flex"), [n], group),
                "s2 varlen 1 doc": (lambda q, k, v: s2_attention(q, k, v, group, backend="varlen"), [n], group),
                "s2 grouped 4 docs": (lambda q, k, v: s2_attention(q, k, v, group, four, backend="grouped"),
                                      four[0], group),
                "s2 flex 4 docs": (lambda q, k, v: s2_attention(q, k, v, group, four, backend="flex"),
                                   four[0], group),
                "s2 varlen 4 docs": (lambda q, k, v: s2_attention(q, k, v, group, four, backend="varlen"),
                                     four[0], group),
                "s2 grouped 4 docs, all flash": (lambda q, k, v: grouped_all_flash(q, k, v, group, four), four[0],
                                                 group),
                "s2 grouped mix, all flash": (lambda q, k, v: grouped_all_flash(q, k, v, group, mix), mix[0], group),
                "s2 grouped mix, ragged padded": (lambda q, k, v: grouped_ragged_padded(q, k, v, group, mix), mix[0],
                                                  group),
                "s2 grouped mix": (lambda q, k, v: s2_attention(q, k, v, group, mix, backend="grouped"), mix[0],
                                   group),
                "s2 flex mix": (lambda q, k, v: s2_attention(q, k, v, group, mix, backend="flex"), mix[0], group),
                "s2 varlen mix": (lambda q, k, v: s2_attention(q, k, v, group, mix, backend="varlen"), mix[0],
                                  group),
                "full per-doc grouped 4 docs": (lambda q, k, v: s2_attention(q, k, v, None, four, backend="grouped"),
                                                four[0], None),
            }
            base_ms = None
            for label, (fn, lens, g) in variants.items():
                try:
                    ms = bench(fn, leaves)
                except Exception as exc:  # noqa: BLE001 - report and go on: one failing variant must not hide the rest
                    print(f"{name} {n} {label}: failed: {type(exc).__name__}: {exc}"[:300])
                    continue
                flops = 3.5 * 4 * pairs(lens, g, heads) * 128
                base_ms = base_ms or ms
                row = {"model": name, "heads": heads, "seq": n, "variant": label, "ms": ms,
                       "tflops": flops / ms / 1e9, "speedup_vs_sdpa_full": base_ms / ms}
                results.append(row)
                save()
                print(f"{name:3s} {n:6d} {label:28s} {ms:8.2f} ms {row['tflops']:6.0f} TFLOP/s "
                      f"x{row['speedup_vs_sdpa_full']:.2f}", flush=True)
            del leaves
            torch.cuda.empty_cache()
    save()


if __name__ == "__main__":
    main()
