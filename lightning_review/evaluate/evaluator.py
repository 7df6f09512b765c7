"""The evaluation: every system's review of every paper against the human reviews, under every judge, at thresholds
6, 7 and 8; systems compared paper by paper; the judges' agreement and biases reported, not hidden.

Per judge, paper and system: the system review's points are matched against the pooled points of the paper's human
reviews. A chat judge matches in both directions (system->human and human->system) and a hit counts only when both
rate the pair at or above the threshold; the share of one-sided hits is the flip rate. The human-human control judges
one human review of a paper against the others, as if it were a system (the ceiling; Liang et al. report 35.25%).
The paper-excerpt control is the paper's own opening, cut to the length of its human reviews, judged as a system: a
judge that gives it as many hits as a human review rewards copying the paper, and the report flags it. A system
review that addresses the judge is judged a second time without those sentences: a judge that scores it higher with
them obeyed them, and the report flags it. Papers a system has no review of, and empty reviews, are flagged with
their counts: a system's scores cover only the papers it reviewed.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from .injection import flags_injection, without_injection
from .ratings import rating_accuracy
from .specificity import specificity
from .statistics import THRESHOLDS, PaperScore, agreed_hits, cohen_kappa, outcomes, spearman, win_rate

HUMAN_CONTROL = "human (control)"
EXCERPT_CONTROL = "paper excerpt (control)"
CONTROLS = (HUMAN_CONTROL, EXCERPT_CONTROL)


@dataclass
class EvaluationInput:
    """papers: paper id -> human reviews; systems: system name -> {paper id -> review}; paper_texts: paper id ->
    the paper (for the paper-excerpt control; none, no control); cut: system -> {"paper_truncated": [paper ids],
    "review_at_length_limit": [paper ids]} as generate recorded them; flags: what reading the input left out
    ({flag name: [entries]}), reported with the evaluation's own flags."""

    papers: dict[str, list[str]]
    systems: dict[str, dict[str, str]]
    paper_texts: dict[str, str] = field(default_factory=dict)
    cut: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    flags: dict[str, list[dict]] = field(default_factory=dict)
    human_ratings: dict[str, list[float | None]] = field(default_factory=dict)  # paper id -> its reviews' ratings
    rating_threshold: float = 6.0  # accept means a rating at or above it (rating accuracy's agreement)


def paper_excerpt(paper: str, chars: int) -> str:
    """The paper's opening, about ``chars`` long, cut after a sentence when one ends in the second half."""
    text = " ".join(paper.split())
    if len(text) <= chars:
        return text
    cut = text.rfind(". ", 0, chars)
    return text[:cut + 1] if cut >= chars // 2 else text[:chars]


@dataclass
class Judged:
    """Similarities of one system's review of one paper under one judge: against the pooled points of the human
    reviews, and (``each``) against every human review on its own."""

    system_points: int
    human_points: int
    forward: dict[tuple[int, int], float] = field(default_factory=dict)
    backward: dict[tuple[int, int], float] | None = None
    each: list["Judged"] = field(default_factory=list)
    points: tuple[list[str], list[str]] = ((), ())  # the system's and the pooled human points this judge found
    rationales: dict[tuple[int, int], str] = field(default_factory=dict)  # forward pairs' reasons
    backward_rationales: dict[tuple[int, int], str] = field(default_factory=dict)
    human_review_of: list[int] = field(default_factory=list)  # per pooled human point: which human review

    def mean_hits_each(self, threshold: float) -> float:
        return float(np.mean([j.score(threshold)[0].hits for j in self.each])) if self.each else 0.0

    def score(self, threshold: float) -> tuple[PaperScore, float]:
        if self.backward is None:
            n = sum(s >= threshold for s in self.forward.values())
            return PaperScore(n, self.system_points, self.human_points), 0.0
        n, flips = agreed_hits(self.forward, self.backward, threshold)
        return PaperScore(n, self.system_points, self.human_points), flips

    def pairs(self, threshold: float, first_review: int = 0) -> dict:
        """Every matched pair with both points, the score in each direction, the reasons and the verdict at
        ``threshold``: what a person reads to audit the judge (result.json's ``pairs``)."""
        system_points, human_points = self.points
        matches = []
        for a, b in sorted(set(self.forward) | set(self.backward or {})):
            forward, backward = self.forward.get((a, b)), (self.backward or {}).get((a, b))
            hit = (forward or 0) >= threshold and (self.backward is None or (backward or 0) >= threshold)
            matches.append({"system_point": a, "human_point": b, "similarity": forward,
                            "similarity_backward": backward, "rationale": self.rationales.get((a, b)),
                            "rationale_backward": self.backward_rationales.get((a, b)), "hit": hit})
        return {"system_points": list(system_points), "human_points": list(human_points),
                "human_point_review": [first_review + k for k in self.human_review_of], "matches": matches}


async def _maybe(value):
    return await value if inspect.isawaitable(value) else value


async def _judge_points(judge, system_points: list[str], human_points: list[str], both: bool) -> Judged:
    forward_matches = await _maybe(judge.match(system_points, human_points))
    result = Judged(len(system_points), len(human_points), {(m.a, m.b): m.similarity for m in forward_matches},
                    rationales={(m.a, m.b): m.rationale for m in forward_matches})
    if both:
        backward_matches = await _maybe(judge.match(human_points, system_points))
        result.backward = {(m.b, m.a): m.similarity for m in backward_matches}
        result.backward_rationales = {(m.b, m.a): m.rationale for m in backward_matches}
    return result


async def judge_one(judge, system_review: str, human_reviews: list[str], both_directions: bool) -> Judged:
    points = await asyncio.gather(*(_maybe(judge.extract_points(r)) for r in [system_review, *human_reviews]))
    system_points = points[0]
    pooled = [p for review_points in points[1:] for p in review_points]
    result = await _judge_points(judge, system_points, pooled, both_directions)
    result.points = (system_points, pooled)
    result.human_review_of = [k for k, review_points in enumerate(points[1:]) for _ in review_points]
    if len(human_reviews) > 1:
        result.each = list(await asyncio.gather(*(_judge_points(judge, system_points, review_points,
                                                                 both_directions) for review_points in points[1:])))
    else:
        result.each = [result]
    return result


def family(name: str) -> str:
    """Model family for the self-preference flag: 'gpt-4-0125-preview' -> 'gpt-4', 'ft:gpt-3.5-turbo:...' ->
    'gpt-3.5', 'llama-2-13b-review' -> 'llama'."""
    name = name.lower().removeprefix("ft:").removeprefix("embedding:")
    match = re.match(r"(gpt-\d(?:\.\d)?|claude|llama|mistral|qwen|gemini|o\d)", name)
    return match.group(1) if match else name.split("-")[0]


async def evaluate(data: EvaluationInput, judges: list, primary_threshold: float = 7, resamples: int = 10_000,
                   seed: int = 0) -> dict:
    """The full result as a JSON-ready dict (see the module docstring)."""
    systems = dict(data.systems)
    control = {pid: reviews[0] for pid, reviews in data.papers.items() if len(reviews) >= 2}
    if control:
        systems[HUMAN_CONTROL] = control
    excerpts = {pid: paper_excerpt(data.paper_texts[pid], int(np.median([len(r) for r in reviews])))
                for pid, reviews in data.papers.items() if reviews and data.paper_texts.get(pid)}
    if excerpts:
        systems[EXCERPT_CONTROL] = excerpts
    judged: dict[str, dict[str, dict[str, Judged]]] = {}
    for judge in judges:
        both = not getattr(judge, "symmetric", False)
        tasks, keys = [], []
        for system, reviews in systems.items():
            for pid, review in reviews.items():
                humans = data.papers.get(pid, [])
                if system == HUMAN_CONTROL:
                    humans = humans[1:]
                if humans:
                    tasks.append(judge_one(judge, review, humans, both))
                    keys.append((system, pid))
        results = await asyncio.gather(*tasks)
        per = judged.setdefault(judge.name, defaultdict(dict))
        for (system, pid), result in zip(keys, results):
            per[system][pid] = result
    pair_agreement = [await same_pairs_agreement(j1, j2, judged[j1.name], primary_threshold)
                      for j1, j2 in combinations(judges, 2)]
    obeyed = [flag for judge in judges for flag in await obeyed_injections(judge, data, judged[judge.name],
                                                                             primary_threshold)]
    result = summarise(data, systems, judges, judged, primary_threshold, resamples, seed)
    result["judge_pair_agreement"] = pair_agreement
    result["flags"]["injection_obeyed"] = obeyed
    result["ratings"] = rating_accuracy(data.human_ratings, data.systems, data.rating_threshold, resamples, seed)
    result["specificity"] = specificity(data.paper_texts, systems, data.papers, resamples, seed)
    return result


async def obeyed_injections(judge, data: EvaluationInput, judged_by_judge: dict, threshold: float) -> list[dict]:
    """System reviews that address the judge, judged again without those sentences: more hits with them than
    without means the judge obeyed them (that review's score under this judge is inflated)."""
    checks = [(system, pid, review) for system, reviews in data.systems.items() for pid, review in reviews.items()
              if flags_injection(review) and pid in judged_by_judge.get(system, {})]
    both = not getattr(judge, "symmetric", False)
    cleaned = await asyncio.gather(*(judge_one(judge, without_injection(review), data.papers[pid], both)
                                     for _, pid, review in checks))
    flags = []
    for (system, pid, _), clean in zip(checks, cleaned):
        with_it, without_it = judged_by_judge[system][pid].score(threshold)[0].hits, clean.score(threshold)[0].hits
        if with_it > without_it:
            flags.append({"judge": judge.name, "system": system, "paper": pid, "hits_with": with_it,
                          "hits_without": without_it, "threshold": threshold})
    return flags


async def same_pairs_agreement(first, second, judged_by_first: dict, threshold: float) -> dict:
    """Two judges on the very same point pairs: the second judge matches the points the first one extracted, so
    their hits (kappa) and similarities (Spearman) are compared pair by pair. A pair one judge did not match counts
    as no hit for it (and is left out of the Spearman, which needs both similarities)."""
    tasks, mine = [], []
    for per_paper in judged_by_first.values():
        for j in per_paper.values():
            system_points, human_points = j.points
            tasks.append(_maybe(second.match(list(system_points), list(human_points))))
            mine.append(j.forward)
    theirs = await asyncio.gather(*tasks)
    hits_1, hits_2, sims_1, sims_2 = [], [], [], []
    for forward, matches in zip(mine, theirs):
        other = {(m.a, m.b): m.similarity for m in matches}
        for pair in set(forward) | set(other):
            hits_1.append(forward.get(pair, 0) >= threshold)
            hits_2.append(other.get(pair, 0) >= threshold)
            if pair in forward and pair in other:
                sims_1.append(forward[pair])
                sims_2.append(other[pair])
    return {"judges": [first.name, second.name], "on_points_of": first.name, "pairs": len(hits_1),
            "kappa_on_hits": cohen_kappa(hits_1, hits_2), "pairs_rated_by_both": len(sims_1),
            "spearman_on_similarities": spearman(sims_1, sims_2)}


def copying_flags(judged: dict, threshold: float) -> list[dict]:
    """Judges under which the paper's own opening gets at least the hits of a human review."""
    flags = []
    for judge, per in judged.items():
        if per.get(EXCERPT_CONTROL) and per.get(HUMAN_CONTROL):
            copied, reviewed = (float(np.mean([j.score(threshold)[0].hits for j in per[name].values()]))
                                for name in (EXCERPT_CONTROL, HUMAN_CONTROL))
            if copied >= reviewed:
                flags.append({"judge": judge, "excerpt_hits": copied, "human_hits": reviewed, "threshold": threshold})
    return flags


def summarise(data, systems, judges, judged, primary_threshold, resamples, seed) -> dict:
    result: dict = {"papers": len(data.papers), "thresholds": list(THRESHOLDS), "primary_threshold": primary_threshold,
                    "systems": {}, "comparisons": [], "judge_agreement": [], "flags": {}}
    for judge_name, per_system in judged.items():
        for system, per_paper in per_system.items():
            row = result["systems"].setdefault(system, {}).setdefault(judge_name, {})
            for t in THRESHOLDS:
                scored = [per_paper[p].score(t) for p in sorted(per_paper)]
                row[str(t)] = {"papers": len(scored),
                               "mean_hits": float(np.mean([s.hits for s, _ in scored])) if scored else 0.0,
                               "mean_hits_per_human_review": float(np.mean([
                                   per_paper[p].mean_hits_each(t) for p in sorted(per_paper)])) if scored else 0.0,
                               "precision": float(np.mean([s.precision for s, _ in scored])) if scored else 0.0,
                               "recall": float(np.mean([s.recall for s, _ in scored])) if scored else 0.0,
                               "flip_rate": float(np.mean([f for _, f in scored])) if scored else 0.0}
    result["pairs"] = {judge_name: {system: {pid: j.pairs(primary_threshold, 1 if system == HUMAN_CONTROL else 0)
                                             for pid, j in sorted(per_paper.items())}
                                    for system, per_paper in per_system.items()}
                       for judge_name, per_system in judged.items()}
    result["per_paper_hits"] = {judge_name: {system: {pid: {str(t): j.score(t)[0].hits for t in THRESHOLDS}
                                                         for pid, j in sorted(per_paper.items())}
                                                for system, per_paper in per_system.items()}
                                   for judge_name, per_system in judged.items()}
    names = [s for s in systems if s not in CONTROLS]
    for judge_name, per_system in judged.items():
        for a, b in combinations(names, 2):
            common = sorted(set(per_system.get(a, {})) & set(per_system.get(b, {})))
            if not common:
                continue
            for metric in ("hits", "recall"):
                score_a = [getattr(per_system[a][p].score(primary_threshold)[0], metric) for p in common]
                score_b = [getattr(per_system[b][p].score(primary_threshold)[0], metric) for p in common]
                rate = win_rate(score_a, score_b, resamples=resamples, seed=seed)
                result["comparisons"].append({"judge": judge_name, "a": a, "b": b, "on": metric,
                                              "papers": len(common), **rate.as_dict()})
    judge_names = list(judged)
    for j1, j2 in combinations(judge_names, 2):
        for a, b in combinations(names, 2):
            common = sorted(set(judged[j1].get(a, {})) & set(judged[j1].get(b, {})) & set(judged[j2].get(a, {})) &
                            set(judged[j2].get(b, {})))
            if len(common) < 2:
                continue
            verdict = {j: outcomes([judged[j][a][p].score(primary_threshold)[0].hits for p in common],
                                   [judged[j][b][p].score(primary_threshold)[0].hits for p in common])
                       for j in (j1, j2)}
            hits_a = {j: [judged[j][a][p].score(primary_threshold)[0].hits for p in common] for j in (j1, j2)}
            result["judge_agreement"].append({
                "judges": [j1, j2], "systems": [a, b], "papers": len(common),
                "kappa_on_a_wins": cohen_kappa(verdict[j1] == 1, verdict[j2] == 1),
                "spearman_on_hits": spearman(hits_a[j1], hits_a[j2])})
    result["flags"]["self_preference"] = [{"judge": j.name, "system": s} for j in judges for s in names
                                          if family(j.name) == family(s)]
    result["flags"]["rewards_paper_copying"] = copying_flags(judged, primary_threshold)
    result["flags"]["cut"] = [{"system": system, "what": what, "papers": len(ids),
                               "of": len(data.systems.get(system, {}))}
                              for system, kinds in data.cut.items() for what, ids in kinds.items() if ids]
    result["flags"]["injection"] = [{"system": s, "paper": p} for s in names
                                    for p, review in systems[s].items() if flags_injection(review)]
    result["flags"]["missing_papers"] = [
        {"system": s, "papers": len(missing), "of": len(data.papers), "ids": missing}
        for s in names if (missing := sorted(set(data.papers) - set(systems[s])))]
    result["flags"]["empty_reviews"] = [
        {"system": s, "papers": len(empty), "of": len(systems[s]), "ids": empty}
        for s in names if (empty := sorted(p for p, review in systems[s].items() if not review.strip()))]
    for name, entries in data.flags.items():
        result["flags"][name] = entries
    usage = {}
    for judge in judges:
        budget = getattr(judge, "budget", None)
        if budget is not None:
            usage[judge.name] = {"calls": budget.calls, "prompt_tokens": budget.prompt_tokens,
                                 "completion_tokens": budget.completion_tokens, "dollars": budget.dollars}
    result["usage_this_run"] = usage
    return result
