"""The evaluation as a reader sees it: a Markdown report with its tables, and PNG charts (win rates with their 95%
intervals; judge agreement)."""

from __future__ import annotations

from pathlib import Path

from .ratings import markdown_lines as rating_lines
from .specificity import markdown_lines as specificity_lines

FLAG_KINDS = ("self_preference", "injection", "injection_obeyed", "rewards_paper_copying", "rewards_generic_review",
              "no_better_than_floor", "cut", "missing_papers",
              "empty_reviews", "not_in_human_file", "human_file", "not_run")


def markdown(result: dict) -> str:
    lines = ["# Review evaluation", "",
             f"{result['papers']} papers; a hit is a matched pair of points rated at or above the threshold "
             "(5-10 scale). Chat judges count a hit only when both matching directions agree; the flip rate is the "
             "share of one-sided hits.", ""]
    for threshold in result["thresholds"]:
        lines += [f"## Threshold {threshold}", "", "| judge | system | papers | mean hits (pooled humans) | "
                  "mean hits per human review | precision | recall | flip rate |", "|---|---|---|---|---|---|---|---|"]
        for system, per_judge in result["systems"].items():
            for judge, per_t in per_judge.items():
                row = per_t[str(threshold)]
                lines.append(f"| {judge} | {system} | {row['papers']} | {row['mean_hits']:.2f} | "
                             f"{row['mean_hits_per_human_review']:.2f} | {row['precision']:.1%} | "
                             f"{row['recall']:.1%} | {row['flip_rate']:.1%} |")
        lines.append("")
    lines += [f"## Systems compared paper by paper (threshold {result['primary_threshold']})", "",
              "| judge | A vs B | on | wins / ties / losses | A's win rate [95% CI] | sign test p |",
              "|---|---|---|---|---|---|"]
    for c in result["comparisons"]:
        lines.append(f"| {c['judge']} | {c['a']} vs {c['b']} | {c['on']} | {c['wins']} / {c['ties']} / "
                     f"{c['losses']} | {c['rate']:.1%} [{c['low']:.1%}, {c['high']:.1%}] | {c['sign_test_p']:.3g} |")
    lines += ["", "## Judge agreement", "", "| judges | systems | papers | kappa on A wins | Spearman on hits |",
              "|---|---|---|---|---|"]
    for a in result["judge_agreement"]:
        lines.append(f"| {' / '.join(a['judges'])} | {' vs '.join(a['systems'])} | {a['papers']} | "
                     f"{_number(a['kappa_on_a_wins'])} | {_number(a['spearman_on_hits'])} |")
    lines += ["", "Judges on the same point pairs (the second judge matches the first one's points):", "",
              "| judges | pairs | kappa on hits | pairs rated by both | Spearman on similarities |",
              "|---|---|---|---|---|"]
    for a in result.get("judge_pair_agreement", []):
        lines.append(f"| {' / '.join(a['judges'])} | {a['pairs']} | {_number(a['kappa_on_hits'])} | "
                     f"{a['pairs_rated_by_both']} | {_number(a['spearman_on_similarities'])} |")
    lines += floor_lines(result)
    lines += [""] + rating_lines(result.get("ratings")) + specificity_lines(result.get("specificity"))
    flags = result["flags"]
    lines += ["", "## Flags", ""]
    for f in flags["self_preference"]:
        lines.append(f"- self-preference risk: judge {f['judge']} is of the same family as system {f['system']}")
    for f in flags["injection"]:
        lines.append(f"- instructions to a judge found in {f['system']}'s review of paper {f['paper']} "
                     "(treated as data, scored as written)")
    for f in flags.get("injection_obeyed", []):
        lines.append(f"- judge {f['judge']} obeyed the instructions in {f['system']}'s review of paper {f['paper']}: "
                     f"{f['hits_with']} hits with them, {f['hits_without']} without (threshold {f['threshold']:g}); "
                     "that score is inflated")
    for f in flags.get("rewards_generic_review", []):
        lines.append(f"- judge {f['judge']} rewards boilerplate: one template review for every paper gets "
                     f"{f['generic_hits']:.2f} hits a paper at {f['threshold']:g}, a human review {f['human_hits']:.2f}")
    for f in flags.get("no_better_than_floor", []):
        lines.append(f"- under judge {f['judge']}, {f['system']} gets {f['hits']:.2f} hits a paper at "
                     f"{f['threshold']:g}, no more than its {f['floor_hits']:.2f} against another paper's reviews: the "
                     "judge cannot tell its reviews of this paper from reviews of any paper")
    for f in flags.get("rewards_paper_copying", []):
        lines.append(f"- judge {f['judge']} rewards copying the paper: the paper's own opening gets {f['excerpt_hits']:.2f}"
                     f" hits a paper at {f['threshold']:g}, a human review {f['human_hits']:.2f}; a system that "
                     "quotes the paper would look good under it")
    for f in flags.get("cut", []):
        what = ("were written from a paper cut to fit the model's context" if f["what"] == "paper_truncated"
                else "stopped at max_new_tokens (cut short)")
        lines.append(f"- {f['system']}: {f['papers']} of {f['of']} reviews {what} (the comparison is of what it wrote)")
    lines += _coverage_flags(flags)
    for f in flags.get("not_run", []):
        lines.append(f"- {f['what']} did not run: {f['reason']}")
    if not any(flags.get(k) for k in FLAG_KINDS):
        lines.append("- none")
    if result.get("usage_this_run"):
        lines += ["", "## Judge usage (this run; cached answers cost nothing)", "",
                  "| judge | calls | prompt tokens | completion tokens | dollars |", "|---|---|---|---|---|"]
        usage = dict(result["usage_this_run"])
        if len(usage) > 1:
            usage["**total**"] = usage_total(usage.values())
        for judge, u in usage.items():
            dollars = "n/a (no prices given)" if u.get("dollars") is None else f"{u['dollars']:.2f}"
            lines.append(f"| {judge} | {u['calls']} | {u['prompt_tokens']:,} | {u['completion_tokens']:,} | "
                         f"{dollars} |")
        parts = [(judge, part, n) for judge, u in result["usage_this_run"].items()
                 for part, n in u.get("by_part", {}).items()]
        if parts:
            lines += ["", "Calls by part (the controls are paid for like systems; `--controls` chooses which run):", "",
                      "| judge | part | reviews judged | calls | tokens |", "|---|---|---|---|---|"]
            lines += [f"| {judge} | {part} | {n['reviews']} | {n['calls']} | {n['tokens']:,} |"
                      for judge, part, n in parts]
    return "\n".join(lines) + "\n"


def usage_total(usages) -> dict:
    """The panel's use: calls and tokens summed, and dollars, each judge at its own prices; unknown (None) where
    any judge's are, never a sum that counts that judge at $0."""
    usages = list(usages)
    total = {key: sum(u[key] for u in usages) for key in ("calls", "prompt_tokens", "completion_tokens")}
    dollars = [u.get("dollars") for u in usages]
    total["dollars"] = None if None in dollars else sum(dollars)
    return total


def cost_summary(usage: dict[str, dict]) -> dict:
    """result.json's ``cost_this_run``: each judge's dollars and their total, the usage table's own numbers, so
    that a script reads them without re-adding them; null where a judge has no price, and a note that says so."""
    dollars = {judge: u.get("dollars") for judge, u in usage.items()}
    unpriced = [judge for judge, spent in dollars.items() if spent is None]
    summary = {"dollars": dollars, "total_dollars": usage_total(usage.values())["dollars"], "unpriced": unpriced}
    if unpriced:
        it = "it" if len(unpriced) == 1 else "them"
        summary["note"] = (f"null: no price was given for {', '.join(unpriced)}; add {it} to --judge_prices (or give "
                           f"--dollars_per_1k_prompt/--dollars_per_1k_completion) to count {it}. The total is null "
                           "while any judge's dollars are: never a sum that counts a judge at $0")
    return summary


def floor_lines(result: dict) -> list[str]:
    """The shuffled-paper floor: each system's hits against its own paper's human reviews and against another's."""
    floor = result.get("shuffled_floor") or {}
    if not floor:
        return []
    key = f"{result['primary_threshold']:g}"
    lines = ["", f"## Hits above the shuffled-paper floor (threshold {result['primary_threshold']:g})", "",
             "Each review is judged a second time against the human reviews of another paper (a fixed, seeded "
             "derangement): the hits it gets there are the judge's false hits for that system, its floor.", "",
             "| judge | system | papers | mean hits | floor (another paper) | above the floor |", "|---|---|---|---|---|---|"]
    for judge, per_system in floor.items():
        for system, row in per_system.items():
            if key in row:
                r = row[key]
                lines.append(f"| {judge} | {system} | {row['papers']} | {r['hits']:.2f} | {r['floor_hits']:.2f} | "
                             f"{r['hits_above_floor']:+.2f} |")
    return lines


def _coverage_flags(flags: dict) -> list[str]:
    """What the comparison does not cover: papers without a review, empty reviews, input left out."""
    lines = []
    for f in flags.get("missing_papers", []):
        lines.append(f"- {f['system']}: no review of {f['papers']} of the {f['of']} papers (e.g. "
                     f"{_some(f['ids'])}); its scores and comparisons cover only the papers it reviewed")
    for f in flags.get("empty_reviews", []):
        lines.append(f"- {f['system']}: {f['papers']} of its {f['of']} reviews are empty or whitespace only (e.g. "
                     f"{_some(f['ids'])}); judged as written, they score no hits")
    for f in flags.get("not_in_human_file", []):
        lines.append(f"- {f['system']}: {f['papers']} of its {f['of']} reviews are of papers the human file does not "
                     f"have after skipping bad records (e.g. {_some(f['ids'])}); left out")
    lines += [f"- {human_file_line(f)}" for f in flags.get("human_file", [])]
    return lines


def human_file_line(flag: dict) -> str:
    """What reading the human file left out, in one line (printed as it is read, and in the report's flags)."""
    skipped = ", ".join(f"{n} {reason}" for reason, n in flag["skipped"].items()) or "none"
    return (f"{flag['file']}: bad records skipped: {skipped}; {flag['duplicates_dropped']} duplicate reviews dropped"
            + (f"; listed in {flag['rejects_file']}" if flag.get("rejects_file") else ""))


def charts(result: dict, directory: Path) -> list[Path]:
    written = []
    comparisons = [c for c in result["comparisons"] if c["on"] == "hits"]
    if comparisons:
        def win_rates(ax):
            rates = [c["rate"] for c in comparisons]
            errors = [[c["rate"] - c["low"] for c in comparisons], [c["high"] - c["rate"] for c in comparisons]]
            ax.errorbar(rates, range(len(rates)), xerr=errors, fmt="o", capsize=4)
            ax.axvline(0.5, color="gray", linestyle="--")
            ax.set_yticks(range(len(rates)), [f"{c['a']} vs {c['b']}\n({c['judge']})" for c in comparisons])

        written.append(_row_chart(len(comparisons), win_rates, (0, 1),
                                  "A's win rate on hits, 95% bootstrap interval", directory / "win_rates.png"))
    rows = result["judge_agreement"]
    if rows:
        def agreement(ax):
            ax.barh([f"{' / '.join(a['judges'])}\n{' vs '.join(a['systems'])}" for a in rows],
                    [0.0 if _undefined(a["kappa_on_a_wins"]) else a["kappa_on_a_wins"] for a in rows])

        written.append(_row_chart(len(rows), agreement, (-1, 1),
                                  "Cohen's kappa between judges on which system wins a paper",
                                  directory / "judge_agreement.png"))
    return written


def _row_chart(n_rows: int, draw, xlim: tuple[float, float], xlabel: str, path: Path) -> Path:
    """One horizontal chart of ``n_rows`` labelled rows, drawn by ``draw(ax)``, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.6 * n_rows + 1.5))
    draw(ax)
    ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _undefined(value) -> bool:
    return value is None or value != value  # None (from JSON) or NaN


def _number(value) -> str:
    return "undefined" if _undefined(value) else f"{value:.2f}"


def _some(ids: list[str], shown: int = 5) -> str:
    """The first few ids of a list (all of them are in result.json)."""
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
