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

from ..errors import UserError
from .injection import flags_injection, without_injection
from .ratings import rating_accuracy, stated_rating
from .specificity import specificity
from .statistics import (THRESHOLDS, PaperScore, agreed_hits, cohen_kappa, hits, is_hit, outcomes, spearman,
                         win_rate)

HUMAN_CONTROL = "human (control)"
EXCERPT_CONTROL = "paper excerpt (control)"
GENERIC_CONTROL = "generic review (control)"
CONTROLS = (HUMAN_CONTROL, EXCERPT_CONTROL, GENERIC_CONTROL)
CONTROL_KINDS = ("human", "excerpt", "generic", "shuffled")  # what --controls chooses from
# One review that fits any paper: the criticisms every reviewer could write without reading it. A judge that gives
# it the hits of a human review rewards boilerplate.
GENERIC_REVIEW = """Summary: The paper proposes a new method and evaluates it on standard benchmarks.

Weaknesses:
1. The experiments are limited: more datasets and stronger, more recent baselines are needed.
2. The novelty is unclear; the differences from prior work should be discussed in more detail.
3. An ablation study is missing, so it is hard to tell which component is responsible for the gains.
4. Some details of the method are unclear and the paper would benefit from a clearer presentation.
5. There is no analysis of the computational cost or of the sensitivity to hyperparameters.

Questions:
- How does the method scale to larger problems?
- Are the improvements statistically significant across several random seeds?
"""


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
    # system -> {paper id -> its stated rating}, as load_input resolved line and 'rating' field (ratings.stated_rating)
    system_ratings: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def ratings_of(self, system: str) -> dict[str, float | None]:
        """The rating each review of ``system`` states: as read with its file, else from its text's rating line."""
        given = self.system_ratings.get(system, {})
        return {pid: given[pid] if pid in given else stated_rating(review)
                for pid, review in self.systems[system].items()}


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
            return PaperScore(hits(self.forward.values(), threshold), self.system_points, self.human_points), 0.0
        n, flips = agreed_hits(self.forward, self.backward, threshold)
        return PaperScore(n, self.system_points, self.human_points), flips

    def pairs(self, threshold: float, first_review: int = 0) -> dict:
        """Every matched pair with both points, the score in each direction, the reasons and the verdict at
        ``threshold``: what a person reads to audit the judge (result.json's ``pairs``)."""
        system_points, human_points = self.points
        matches = []
        for a, b in sorted(set(self.forward) | set(self.backward or {})):
            forward, backward = self.forward.get((a, b)), (self.backward or {}).get((a, b))
            hit = is_hit(forward, backward, threshold, self.backward is not None)
            matches.append({"system_point": a, "human_point": b, "similarity": forward,
                            "similarity_backward": backward, "rationale": self.rationales.get((a, b)),
                            "rationale_backward": self.backward_rationales.get((a, b)), "hit": hit})
        return {"system_points": list(system_points), "human_points": list(human_points),
                "human_point_review": [first_review + k for k in self.human_review_of], "matches": matches,
                "both_directions": self.backward is not None}


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


async def _extract(judge, review: str, paper: str | None):
    """The review's points; a judge that uses the paper (to leave restatements of it out) gets it."""
    if getattr(judge, "uses_paper", False):
        return await _maybe(judge.extract_points(review, paper=paper))
    return await _maybe(judge.extract_points(review))


async def judge_one(judge, system_review: str, human_reviews: list[str], both_directions: bool,
                    paper: str | None = None, human_paper: str | None = None) -> Judged:
    """``paper``: the paper the system reviewed; ``human_paper``: the one the human reviews are of (another paper
    for the shuffled floor; by default the same)."""
    human_paper = paper if human_paper is None else human_paper
    points = await asyncio.gather(_extract(judge, system_review, paper),
                                  *(_extract(judge, r, human_paper) for r in human_reviews))
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


def derangement(ids: list[str], seed: int = 0) -> dict[str, str]:
    """Each paper id -> another one (fixed by ``seed``): one seeded cycle through the shuffled ids, so no paper
    maps to itself. Fewer than two papers: none."""
    if len(ids) < 2:
        return {}
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    return {pid: order[(k + 1) % len(order)] for k, pid in enumerate(order)}


def control_systems(data: EvaluationInput, controls: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """The control systems asked for: the human control (review 0 of papers with two or more), the paper excerpt
    (papers with text) and the generic review (every paper)."""
    unknown = set(controls) - set(CONTROL_KINDS)
    if unknown:
        raise UserError(f"unknown controls {sorted(unknown)}: choose from {list(CONTROL_KINDS)}")
    systems = {}
    if "human" in controls:
        if control := {pid: reviews[0] for pid, reviews in data.papers.items() if len(reviews) >= 2}:
            systems[HUMAN_CONTROL] = control
    if "excerpt" in controls:
        excerpts = {pid: paper_excerpt(data.paper_texts[pid], int(np.median([len(r) for r in reviews])))
                    for pid, reviews in data.papers.items() if reviews and data.paper_texts.get(pid)}
        if excerpts:
            systems[EXCERPT_CONTROL] = excerpts
    if "generic" in controls:
        systems[GENERIC_CONTROL] = {pid: GENERIC_REVIEW for pid, reviews in data.papers.items() if reviews}
    return systems


def refuse_control_names(systems, flag: str = "--systems") -> None:
    """Refuse a system named like a control (CONTROLS, in any case or spacing): its reviews would replace the
    control's row, or be taken for the control (left out of the comparisons, its first human review dropped)."""
    reserved = {" ".join(name.split()).casefold(): name for name in CONTROLS}
    for name in systems:
        if (control := reserved.get(" ".join(str(name).split()).casefold())) is not None:
            raise UserError(f"{flag}: the system {name!r} has the name of the control {control!r}, which the "
                            f"evaluation adds itself (reserved: {', '.join(map(repr, CONTROLS))}); its reviews would "
                            "replace the control's or be taken for it. Rename that system in "
                            f"{flag} (e.g. 'ours' or its model's name)")


def _humans_for(system: str, reviews: list[str]) -> list[str]:
    """The human reviews a system's review is judged against (the human control's own review left out)."""
    return reviews[1:] if system == HUMAN_CONTROL else reviews


def _usage(judge) -> tuple[int, int]:
    budget = getattr(judge, "budget", None)
    return (budget.calls, budget.prompt_tokens + budget.completion_tokens) if budget is not None else (0, 0)


async def evaluate(data: EvaluationInput, judges: list, primary_threshold: float = 7, resamples: int = 10_000,
                   seed: int = 0, controls: tuple[str, ...] = CONTROL_KINDS) -> dict:
    """The full result as a JSON-ready dict (see the module docstring). ``controls``: which of CONTROL_KINDS run
    (chat judges pay for each; result["usage_this_run"] counts the calls of each part)."""
    controls = tuple(controls)
    refuse_control_names(data.systems)
    names = [judge.name for judge in judges]
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise UserError(f"judges {twice} are given twice (the same model at the same endpoint): their answers "
                        "would be reported twice and agree with themselves; give each judge once")
    control = control_systems(data, controls)
    systems = {**data.systems, **control}
    shuffle = derangement(sorted(pid for pid, reviews in data.papers.items() if reviews), seed) \
        if "shuffled" in controls else {}
    parts = [("systems", list(data.systems)), *((kind, [name]) for kind, name in
                                                zip(("human", "excerpt", "generic"), CONTROLS) if name in control)]
    judged: dict[str, dict[str, dict[str, Judged]]] = {}
    floors: dict[str, dict[str, dict[str, Judged]]] = {}
    part_usage: dict[str, dict[str, dict[str, int]]] = {}
    for judge in judges:
        if hasattr(judge, "use_corpus"):
            judge.use_corpus(data.paper_texts[pid] for pid in sorted(data.paper_texts))
        both = not getattr(judge, "symmetric", False)
        per = judged.setdefault(judge.name, defaultdict(dict))
        floor = floors.setdefault(judge.name, defaultdict(dict))
        usage = part_usage.setdefault(judge.name, {})
        jobs = [(part, [(per, system, pid, review, pid) for system in names
                        for pid, review in systems[system].items()]) for part, names in parts]
        if shuffle:
            jobs.append(("shuffled", [(floor, system, pid, review, shuffle[pid]) for system in systems
                                      for pid, review in systems[system].items() if pid in shuffle]))
        for part, tasks in jobs:  # part by part, to count what each costs a paying judge
            before = _usage(judge)
            tasks = [(into, system, pid, review, other, _humans_for(system, data.papers.get(other, [])))
                     for into, system, pid, review, other in tasks]
            tasks = [t for t in tasks if t[5]]
            results = await asyncio.gather(*(judge_one(judge, review, humans, both, data.paper_texts.get(pid),
                                                       data.paper_texts.get(other))
                                              for _, _, pid, review, other, humans in tasks))
            for (into, system, pid, *_), result in zip(tasks, results):
                into[system][pid] = result
            after = _usage(judge)
            usage[part] = {"calls": after[0] - before[0], "tokens": after[1] - before[1], "reviews": len(tasks)}
    pair_agreement = [await same_pairs_agreement(j1, j2, judged[j1.name], primary_threshold)
                      for j1, j2 in combinations(judges, 2)]
    obeyed = [flag for judge in judges for flag in await obeyed_injections(judge, data, judged[judge.name],
                                                                             primary_threshold)]
    result = summarise(data, systems, judges, judged, primary_threshold, resamples, seed)
    result["controls"] = list(controls)
    result["shuffled_floor"] = floor_summary(judged, floors, shuffle, (*THRESHOLDS, primary_threshold))
    result["floor_pairs"] = audit_pairs(floors, primary_threshold, shuffle)
    result["flags"]["rewards_generic_review"] = generic_flags(judged, primary_threshold)
    result["flags"]["no_better_than_floor"] = floor_flags(result["shuffled_floor"], primary_threshold)
    for judge_name, usage in part_usage.items():
        if judge_name in result["usage_this_run"]:
            result["usage_this_run"][judge_name]["by_part"] = usage
    result["judge_pair_agreement"] = pair_agreement
    result["flags"]["injection_obeyed"] = obeyed
    result["ratings"] = rating_accuracy(data.human_ratings, {name: data.ratings_of(name) for name in data.systems},
                                        data.rating_threshold, resamples, seed)
    result["specificity"] = specificity(data.paper_texts, systems, data.papers, resamples, seed)
    result["flags"]["not_run"] = not_run_flags(data, controls, control, shuffle, result["specificity"])
    return result


def not_run_flags(data: EvaluationInput, controls: tuple[str, ...], control: dict, shuffle: dict,
                  specificity_result: dict | None) -> list[dict]:
    """The controls asked for that could not run on this data, and a specificity that could not be measured, each
    with the reason: a report without them says so rather than leaving their sections out unexplained."""
    papers = sum(1 for reviews in data.papers.values() if reviews)
    flags = []
    if "shuffled" in controls and not shuffle:
        flags.append({"what": "the shuffled-paper floor", "reason": f"it needs the human reviews of at least 2 "
                      f"papers (each system's review is judged against another paper's); the human file has {papers}"})
    if "human" in controls and HUMAN_CONTROL not in control:
        flags.append({"what": "the human control", "reason": "it needs a paper with at least 2 human reviews (one is "
                      "judged against the others); no paper of the human file has 2"})
    if "excerpt" in controls and EXCERPT_CONTROL not in control:
        flags.append({"what": "the paper-excerpt control", "reason": "it needs the papers' texts; the human file "
                      "gives none"})
    if specificity_result is None:
        flags.append({"what": "specificity", "reason": f"it needs at least 2 paper texts (a paper's key terms are "
                      f"the terms rare in the other papers); the human file has {len(data.paper_texts)}"})
    return flags


def _mean_hits(per_paper: dict[str, Judged], threshold: float) -> float:
    return float(np.mean([j.score(threshold)[0].hits for j in per_paper.values()])) if per_paper else 0.0


def floor_summary(judged: dict, floors: dict, shuffle: dict[str, str], thresholds=THRESHOLDS) -> dict:
    """Per judge and system: the mean hits of its reviews against another paper's human reviews (the false-hit
    rate) and its own mean hits above that floor, at each threshold, on the papers both cover."""
    summary: dict = {}
    for judge_name, per_system in floors.items():
        for system, per_paper in per_system.items():
            own = {pid: j for pid, j in judged[judge_name].get(system, {}).items() if pid in per_paper}
            row = summary.setdefault(judge_name, {})[system] = {
                "papers": len(per_paper), "against": {pid: shuffle[pid] for pid in sorted(per_paper)}}
            for t in sorted(set(thresholds)):
                floor_hits, own_hits = _mean_hits(per_paper, t), _mean_hits(own, t)
                row[f"{t:g}"] = {"floor_hits": floor_hits, "hits": own_hits,
                                 "hits_above_floor": own_hits - floor_hits}
    return summary


def generic_flags(judged: dict, threshold: float) -> list[dict]:
    """Judges under which one template review that fits any paper gets at least the hits of a human review."""
    flags = []
    for judge, per in judged.items():
        if per.get(GENERIC_CONTROL) and per.get(HUMAN_CONTROL):
            generic, human = _mean_hits(per[GENERIC_CONTROL], threshold), _mean_hits(per[HUMAN_CONTROL], threshold)
            if generic > 0 and generic >= human:
                flags.append({"judge": judge, "generic_hits": generic, "human_hits": human, "threshold": threshold})
    return flags


def floor_flags(floor: dict, threshold: float) -> list[dict]:
    """Systems and the human control whose hits under a judge are no more than against another paper's reviews:
    the judge cannot tell their reviews of this paper from reviews of any paper (the excerpt and the generic review
    are expected there, and not flagged)."""
    key = f"{threshold:g}"
    return [{"judge": judge, "system": system, "hits": row[key]["hits"], "floor_hits": row[key]["floor_hits"],
             "threshold": threshold}
            for judge, per_system in floor.items() for system, row in per_system.items()
            if system not in (EXCERPT_CONTROL, GENERIC_CONTROL) and row[key]["hits_above_floor"] <= 0]


async def obeyed_injections(judge, data: EvaluationInput, judged_by_judge: dict, threshold: float) -> list[dict]:
    """System reviews that address the judge, judged again without those sentences: more hits with them than
    without means the judge obeyed them (that review's score under this judge is inflated)."""
    checks = [(system, pid, review) for system, reviews in data.systems.items() for pid, review in reviews.items()
              if flags_injection(review) and pid in judged_by_judge.get(system, {})]
    both = not getattr(judge, "symmetric", False)
    cleaned = await asyncio.gather(*(judge_one(judge, without_injection(review), data.papers[pid], both,
                                               data.paper_texts.get(pid)) for _, pid, review in checks))
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
            hits_1.append(is_hit(forward.get(pair), None, threshold, False))
            hits_2.append(is_hit(other.get(pair), None, threshold, False))
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
            copied, reviewed = _mean_hits(per[EXCERPT_CONTROL], threshold), _mean_hits(per[HUMAN_CONTROL], threshold)
            if copied > 0 and copied >= reviewed:  # no hits at all rewards nothing
                flags.append({"judge": judge, "excerpt_hits": copied, "human_hits": reviewed, "threshold": threshold})
    return flags


def audit_pairs(judged: dict[str, dict[str, dict[str, Judged]]], threshold: float,
                against: dict[str, str] | None = None) -> dict:
    """result.json's ``pairs`` (judge -> system -> paper -> ``Judged.pairs``), what the audit page shows. With
    ``against`` (paper -> the paper whose human reviews it was judged against: the shuffled floor's derangement),
    each entry says so (``floor_pairs``): the page shows why the floor hits, labelled as the floor."""
    def entry(system: str, pid: str, j: Judged) -> dict:
        pairs = j.pairs(threshold, 1 if system == HUMAN_CONTROL else 0)  # the human control's review 0 is the system
        return pairs if against is None else {**pairs, "against": against[pid]}

    return {judge_name: {system: {pid: entry(system, pid, j) for pid, j in sorted(per_paper.items())}
                         for system, per_paper in per_system.items()}
            for judge_name, per_system in judged.items()}


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
    result["pairs"] = audit_pairs(judged, primary_threshold)
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
