"""Tables (Markdown) and a chart (PNG) of benchmarks/train_step.py results, for benchmarks/RESULTS.md.

    python benchmarks/train_step_report.py benchmarks/results/train_step_*_h200.json --png benchmarks/train_step.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

VARIANTS = ("baseline", "ours", "ours_offload")


def rows(results: list[dict]) -> list[dict]:
    """One row per (shape, job, variant), merged over files (the variants of one job may come from several runs)."""
    out = []
    for result in results:
        for label, entry in result.items():
            if not label.startswith(("seq_", "mix_", "search_")):
                continue
            for variant in VARIANTS:
                if variant in entry:
                    out.append({"shape": result["shape"], "job": label, "variant": variant, **entry[variant]})
    return out


def cell(row: dict | None) -> str:
    if row is None:
        return "-"
    if row.get("oom"):
        return "OOM"
    return (f"{row['tokens_per_s']:,.0f} tok/s / {100 * row['mfu']:.0f}% ({100 * row['mfu_of_790']:.0f}%) / "
            f"{row['peak_gb']:.1f} GB")


def table(all_rows: list[dict]) -> str:
    jobs = sorted({(r["shape"], r["job"]) for r in all_rows},
                  key=lambda j: (j[0] != "13b", ("seq", "mix", "search").index(j[1].split("_")[0]),
                                 int(j[1].split("_")[1])))
    lines = ["| model | job | baseline (transformers+peft) | ours | ours + activation offload | speed-up ours / "
             "offload |", "|---|---|---|---|---|---|"]
    for shape, job in jobs:
        found = {r["variant"]: r for r in all_rows if r["shape"] == shape and r["job"] == job}
        base = found.get("baseline", {}).get("tokens_per_s")
        ratios = [f"x{found[v]['tokens_per_s'] / base:.2f}" if base and found.get(v, {}).get("tokens_per_s") else "-"
                  for v in ("ours", "ours_offload")]
        name = job.replace("seq_", "").replace("mix_", "length mix, rows of ").replace("search_", "search ")
        lines.append(f"| {shape.upper()} | {name} | {cell(found.get('baseline'))} | {cell(found.get('ours'))} | "
                     f"{cell(found.get('ours_offload'))} | {' / '.join(ratios)} |")
    return "\n".join(lines)


def chart(all_rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for shape, marker in (("13b", "o"), ("7b", "s")):
        for variant, style in zip(VARIANTS, ("-", "--", ":")):
            points = sorted((int(r["job"].split("_")[1]), r) for r in all_rows
                            if r["shape"] == shape and r["variant"] == variant and r["job"].startswith("seq_")
                            and not r.get("oom"))
            if not points:
                continue
            xs = [p[0] // 1024 for p in points]
            label = f"{shape.upper()} {variant}"
            axes[0].plot(xs, [p[1]["tokens_per_s"] for p in points], style, marker=marker, label=label)
            axes[1].plot(xs, [p[1]["peak_gb"] for p in points], style, marker=marker, label=label)
    axes[0].set(xlabel="tokens per row (K)", ylabel="tokens / s", title="Training throughput, one H200")
    axes[1].set(xlabel="tokens per row (K)", ylabel="peak GB (max_memory_allocated)", title="Peak memory")
    for gb, tokens in ((22, "16K"), (32, "32K")):
        axes[1].axhline(gb, color="grey", lw=0.8)
        axes[1].text(8, gb + 0.3, f"13B {tokens} target: {gb} GB", fontsize=7, color="grey")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks([8, 16, 32], ["8K", "16K", "32K"])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--png")
    args = parser.parse_args()
    all_rows = rows([json.loads(Path(f).read_text()) for f in args.files])
    print(table(all_rows))
    if args.png:
        chart(all_rows, Path(args.png))


if __name__ == "__main__":
    main()
