"""Calibrates the offline judge's cosine -> 5-10 scale on a development set that is not the acceptance test's data.

The development set is a fixed, seeded sample of real NeurIPS 2025 papers with their reviews (the project's
paper-with-reviews JSONL; benchmarks/docling_papers.py builds it from a public crawl). On it every control of the
evaluator runs exactly as ``evaluate`` runs it (the same points: criticisms, restatements of the paper and points
without a word particular to their paper left out, the sample's papers as corpus): the human control (review 0 of
each paper against the others), the paper excerpt, the generic review, and each one's shuffled-paper floor (judged
against the human reviews of another paper, a seeded derangement). For each, the cosines of the one-to-one matched
point pairs are kept, so hits can be counted at any cosine.

The rule (embedding_judge's docstring states it with the numbers this script printed):

* 7 (the default hit threshold) is the lowest cosine, on a 0.01 grid, at which at most ``--false_hit_rate`` (5%) of
  the human control's matched pairs against ANOTHER paper's reviews are hits: a hit at 7 is then, 19 times in 20,
  not something any review of any paper would match.
* 5 ("related, a different point") is the median cosine of those same floor pairs: what the best match of a
  criticism among another paper's criticisms typically reaches.
* 10 stays at cosine 0.85 (a paraphrase), as first stated; the scale is linear from 5 to 7 and from 7 to 10
  (clipped to [5, 10]), so 6 is midway between the 5 and 7 cosines and 8 a third of the way from 7 to 10.

    python benchmarks/judge_calibration.py --dev_file /tmp/neurips/neurips.jsonl --papers 100  # 21 min, 2 CPU cores

writes benchmarks/results/judge_calibration.json (the anchors, and per cosine cutoff the mean hits a paper of every
control and floor) and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightning_review.evaluate.command import load_input  # noqa: E402
from lightning_review.evaluate.embedding_judge import EmbeddingJudge, one_to_one  # noqa: E402
from lightning_review.evaluate.evaluator import EXCERPT_CONTROL, GENERIC_CONTROL, HUMAN_CONTROL, \
    control_systems, derangement, judge_one, _humans_for  # noqa: E402

GRID = np.round(np.arange(0.30, 0.901, 0.01), 2)
PARAPHRASE_COSINE = 0.85  # 10, kept from the first calibration: MiniLM's cosine of two paraphrases
PREVIOUS = {"cosine_at_5": 0.35, "cosine_at_6": 0.45, "cosine_at_7": 0.55, "cosine_at_8": 0.65,
            "cosine_at_10": 0.85}  # the first, stated calibration (linear from 0.35 -> 5 to 0.85 -> 10)


def dev_sample(dev_file: Path, papers: int, seed: int, into: Path) -> list[str]:
    """A seeded sample of ``papers`` papers with at least two non-empty reviews, written to ``into``; their ids."""
    rows = [json.loads(line) for line in dev_file.read_text().split("\n") if line.strip()]
    rows = [r for r in rows if r.get("paper") and sum(bool(str(v.get("text", "")).strip())
                                                       for v in r.get("reviews", [])) >= 2]
    if len(rows) < papers:
        raise SystemExit(f"{dev_file}: {len(rows)} papers with two or more reviews, fewer than --papers {papers}")
    chosen = sorted(np.random.default_rng(seed).choice(len(rows), size=papers, replace=False))
    into.write_text("".join(json.dumps(rows[i]) + "\n" for i in chosen))
    return [rows[i]["id"] for i in chosen]


def matched_cosines(judge: EmbeddingJudge, system_points: list[str], human_points: list[str]) -> list[float]:
    """The cosines of the one-to-one matched pairs (the judge's own matching: greedy, most similar first)."""
    cosine = judge.cosine(system_points, human_points)
    return [float(cosine[m.a, m.b]) for m in one_to_one(cosine)]


async def judge_all(judge: EmbeddingJudge, data, seed: int) -> dict[str, dict[str, list[list[float]]]]:
    """control -> {"own": per paper matched cosines, "floor": the same against another paper's reviews}."""
    judge.use_corpus(data.paper_texts[pid] for pid in sorted(data.paper_texts))
    systems = control_systems(data, ("human", "excerpt", "generic"))
    shuffle = derangement(sorted(pid for pid, reviews in data.papers.items() if reviews), seed)
    out: dict[str, dict[str, list[list[float]]]] = {}
    for system, reviews in systems.items():
        out[system] = {"own": [], "floor": []}
        for pid, review in sorted(reviews.items()):
            for key, other in (("own", pid), ("floor", shuffle[pid])):
                humans = _humans_for(system, data.papers[other])
                judged = await judge_one(judge, review, humans, False, data.paper_texts[pid],
                                         data.paper_texts[other])
                out[system][key].append(matched_cosines(judge, *judged.points))
    return out


def hits_at(per_paper: list[list[float]], cosine: float) -> float:
    return float(np.mean([sum(c >= cosine - 1e-9 for c in paper) for paper in per_paper]))


def false_hit_rate(per_paper: list[list[float]], cosine: float) -> float:
    pairs = [c for paper in per_paper for c in paper]
    return float(np.mean([c >= cosine - 1e-9 for c in pairs])) if pairs else 0.0


def calibrate(cosines: dict, rate: float) -> dict:
    """The anchors by the rule of the module docstring (10 stays at PARAPHRASE_COSINE)."""
    floor = cosines[HUMAN_CONTROL]["floor"]
    at_7 = next(float(c) for c in GRID if false_hit_rate(floor, c) <= rate)
    at_5 = round(float(np.median([c for paper in floor for c in paper])), 2)
    return {"cosine_at_5": at_5, "cosine_at_6": round((at_5 + at_7) / 2, 3), "cosine_at_7": at_7,
            "cosine_at_8": round(at_7 + (PARAPHRASE_COSINE - at_7) / 3, 3), "cosine_at_10": PARAPHRASE_COSINE}


def at_thresholds(cosines: dict, anchors: dict) -> dict:
    """Mean hits a paper of every control and floor at the thresholds 6, 7 and 8 of a calibration."""
    names = ((HUMAN_CONTROL, "human"), (EXCERPT_CONTROL, "excerpt"), (GENERIC_CONTROL, "generic"))
    return {str(t): {"cosine": anchors[f"cosine_at_{t}"],
                     **{f"{name} {key}": round(hits_at(cosines[system][key], anchors[f"cosine_at_{t}"]), 3)
                        for system, name in names for key in ("own", "floor")}} for t in (6, 7, 8)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev_file", default="/tmp/neurips/neurips.jsonl", type=Path)
    parser.add_argument("--papers", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--false_hit_rate", type=float, default=0.05)
    parser.add_argument("--output_file", type=Path, default=ROOT / "benchmarks/results/judge_calibration.json")
    args = parser.parse_args(argv)
    if not args.dev_file.exists():
        raise SystemExit(f"{args.dev_file}: no such development file (benchmarks/docling_papers.py makes one)")
    if not 0 < args.false_hit_rate < 1:
        raise SystemExit(f"--false_hit_rate {args.false_hit_rate}: a share, between 0 and 1")
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "dev.jsonl"
        ids = dev_sample(args.dev_file, args.papers, args.seed, sample)
        data = load_input(str(sample), {})
    judge = EmbeddingJudge()
    cosines = asyncio.run(judge_all(judge, data, args.seed))
    anchors = calibrate(cosines, args.false_hit_rate)
    table = [{"cosine": float(c), **{f"{name} {key}": hits_at(cosines[system][key], c)
                                     for system, name in ((HUMAN_CONTROL, "human"), (EXCERPT_CONTROL, "excerpt"),
                                                          (GENERIC_CONTROL, "generic"))
                                     for key in ("own", "floor")},
              "human floor false-hit rate": false_hit_rate(cosines[HUMAN_CONTROL]["floor"], c)} for c in GRID]
    points = {system: {key: float(np.mean([len(p) for p in per])) for key, per in parts.items()}
              for system, parts in cosines.items()}
    result = {"dev_file": str(args.dev_file), "papers": len(ids), "seed": args.seed, "ids": ids,
              "false_hit_rate": args.false_hit_rate, "judge": judge.name,
              "previous_anchors": PREVIOUS, "anchors": anchors, "matched_pairs_per_paper": points,
              "previous_at_thresholds": at_thresholds(cosines, PREVIOUS),
              "at_thresholds": at_thresholds(cosines, anchors), "by_cosine": table,
              "matched_cosines": {system: {key: [[round(c, 4) for c in paper] for paper in per]
                                           for key, per in parts.items()} for system, parts in cosines.items()},
              "seconds": round(time.time() - start, 1)}
    args.output_file.parent.mkdir(parents=True, exist_ok=True)
    args.output_file.write_text(json.dumps(result, indent=1) + "\n")
    for label, key in (("previous calibration", "previous_at_thresholds"), ("this calibration", "at_thresholds")):
        print(f"{label}: " + "; ".join(f"{t} (cosine {row['cosine']}): " + ", ".join(
            f"{k} {v:.2f}" for k, v in row.items() if k != "cosine") for t, row in result[key].items()))
    columns = [k for k in table[0] if k != "cosine"]
    print(f"{len(ids)} dev papers, {result['seconds']} s; anchors {anchors}")
    print("matched pairs a paper:", {s.split(' (')[0]: v for s, v in points.items()})
    print("| cosine | " + " | ".join(columns) + " |")
    for row in table:
        if round(row["cosine"] * 100) % 5 == 0 or any(abs(row["cosine"] - v) < 1e-6 for v in anchors.values()):
            print(f"| {row['cosine']:.2f} | " + " | ".join(f"{row[k]:.3f}" for k in columns) + " |")
    return result


if __name__ == "__main__":
    main()
