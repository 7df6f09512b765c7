"""Tables (Markdown) and a chart (PNG) of benchmarks/train_step.py results, for benchmarks/RESULTS.md.

    python benchmarks/train_step_report.py benchmarks/results/train_step_13b_levers2_h200.json --png out.png

One table per result file: ratios are only taken against the baseline measured in the same run (the baseline's
own speed moves by a few percent from one machine start to the next).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

JOB_KINDS = ("seq", "mix", "search")


def short(variant: str) -> str:
    """``ours:checkpointed_layers=0;rows=8192`` -> ``ours: checkpointed_layers=0`` (the rows are the table's)."""
    name, _, rest = variant.partition(":")
    settings = [item for item in rest.split(";") if item and not item.startswith("rows=")]
    return f"{name}: {', '.join(settings)}" if settings else name


def rows(result: dict) -> list[dict]:
    """One row per (job, variant) of one result file."""
    out = []
    for label, entry in result.items():
        if not isinstance(entry, dict) or not label.startswith(tuple(f"{k}_" for k in JOB_KINDS)):
            continue
        for variant, found in entry.items():
            if isinstance(found, dict) and ("tokens_per_s" in found or found.get("oom")):
                out.append({"shape": result["shape"], "job": label, "variant": variant, **found})
    return out


def job_order(job: str) -> tuple:
    kind, length = job.split("_")
    return JOB_KINDS.index(kind), int(length)


def table(result: dict) -> str:
    found = rows(result)
    lines = [f"{result['shape'].upper()}, {result.get('device_name', result['args']['device'])}, measured bf16 peak "
             f"{result.get('peak_bf16_tflops', '-')} TFLOP/s, {result['date']}",
             "", "| row | variant | tokens/s | MFU (of 790) | peak GB | x baseline |", "|---|---|---|---|---|---|"]
    for job in sorted({r["job"] for r in found}, key=job_order):
        base = next((r for r in found if r["job"] == job and r["variant"] == "baseline"), None)
        name = job.replace("seq_", "").replace("mix_", "length mix in rows of ").replace("search_", "search ")
        for r in (r for r in found if r["job"] == job):
            if r.get("oom"):
                lines.append(f"| {name} | {short(r['variant'])} | OOM | - | {r.get('peak_gb') or '-'} | - |")
                continue
            ratio = f"x{r['tokens_per_s'] / base['tokens_per_s']:.2f}" if base and base.get("tokens_per_s") else "-"
            mfu = f"{100 * r['mfu']:.0f}% ({100 * r['mfu_of_790']:.0f}%)" if "mfu" in r else "-"
            lines.append(f"| {name} | {short(r['variant'])} | {r['tokens_per_s']:,.0f} | {mfu} | "
                         f"{r['peak_gb'] if r['peak_gb'] is not None else '-'} | {ratio} |")
    return "\n".join(lines)


def chart(results: list[dict], path: Path) -> None:
    """tokens/s and peak memory against row length, one line per (model, variant) over the files' seq_ jobs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[str, list[tuple[int, dict]]] = {}
    for result in results:
        for r in rows(result):
            if r["job"].startswith("seq_") and not r.get("oom"):
                label = f"{r['shape'].upper()} {short(r['variant'])}"
                lines.setdefault(label, []).append((job_order(r["job"])[1], r))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for label, points in sorted(lines.items()):
        points.sort(key=lambda p: p[0])
        xs = [p[0] // 1024 for p in points]
        style = "--" if label.split()[1] == "baseline" else "-"
        axes[0].plot(xs, [p[1]["tokens_per_s"] for p in points], style, marker="o", label=label)
        axes[1].plot(xs, [p[1]["peak_gb"] for p in points], style, marker="o", label=label)
    axes[0].set(xlabel="tokens per row (K)", ylabel="tokens / s", title="Training throughput, one H200")
    axes[1].set(xlabel="tokens per row (K)", ylabel="peak GB (max_memory_allocated)", title="Peak memory")
    for gb, tokens in ((22, "16K"), (32, "32K")):
        axes[1].axhline(gb, color="grey", lw=0.8)
        axes[1].text(8, gb + 1, f"13B {tokens} target: {gb} GB", fontsize=7, color="grey")
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
    results = [json.loads(Path(f).read_text()) for f in args.files]
    for f, result in zip(args.files, results):
        print(f"### {Path(f).name}\n\n{table(result)}\n")
    if args.png:
        chart(results, Path(args.png))


if __name__ == "__main__":
    main()
