"""The audit page: one self-contained HTML file beside report.md where a person reads what the judge matched.

The seed found GPT-4-0125's self-preference only by reading point pairs; the tables of report.md cannot show it. Per
paper, each judged (judge, system) pair of reviews is a table: the system's point on the left, the human point the
judge matched it with on the right, the judge's score (5-10) and its reason between (a chat judge's rationale, the
offline judge's cosine), points left unmatched below. The shuffled-paper floor is there too, labelled as such: the
same system review judged against another paper's human reviews, where every hit is a false one, so a reader sees
why the floor hits. Filters by system, judge, part (reviews, floor) and threshold re-mark the hits and hide the rest,
so a reader can check one judge's verdicts on one system at a time.

Reviews, papers, system and judge names are untrusted text: every value is written through ``html.escape`` (text and
attributes alike), the one inline script reads values only through ``dataset`` and ``value`` and writes only
``textContent``, ``hidden`` and classes, never HTML, and a Content-Security-Policy allows that script (by its hash)
and inline styles only: nothing is fetched, nothing else runs, even if an escape were missed.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from .statistics import is_hit


@dataclass(frozen=True)
class PairRecord:
    """One pair of points a judge matched: the system review's point and the human reviews' point.

    ``score`` is the judge's similarity on the 5-10 scale in the system -> human direction (None where only the other
    direction paired them); ``reverse_score`` the human -> system one where the judge matches both ways (chat judges:
    a hit needs both at the threshold), None where one direction is all there is (the offline judge: cosine is
    symmetric). ``rationale`` is the judge's reason (a chat judge's sentence, the offline judge's cosine);
    ``human_review`` which of the paper's human reviews the human point comes from (0-based); ``both_directions``
    whether the judge matches both ways (the evaluator's ``pairs`` say so per paper); ``against`` the paper whose human
    reviews the system's review was judged against when it is not its own (the shuffled-paper floor), else None."""

    paper: str
    system: str
    judge: str
    system_point: str
    human_point: str
    score: float | None
    reverse_score: float | None = None
    rationale: str | None = None
    reverse_rationale: str | None = None
    human_review: int | None = None
    both_directions: bool = False
    against: str | None = None

    def hit(self, threshold: float) -> bool:
        """The evaluator's rule (statistics.is_hit): at or above the threshold, in both directions for a judge that
        matches both ways (a pair such a judge matched one way only is no hit); a score back means a two-way judge."""
        return is_hit(self.score, self.reverse_score, threshold, self.both_directions or self.reverse_score is not None)


@dataclass(frozen=True)
class UnmatchedPoint:
    """A point the judge extracted but paired with nothing (``side``: whose review it is from)."""

    paper: str
    system: str
    judge: str
    side: Literal["system", "human"]
    text: str
    human_review: int | None = None
    against: str | None = None  # as PairRecord's: the floor's other paper


def records_from_result(result: dict) -> tuple[list[PairRecord], list[UnmatchedPoint]]:
    """The page's input from the evaluator's result (``result["pairs"][judge][system][paper]``: the points the
    judge extracted and its ``matches`` by index; ``result["floor_pairs"]`` likewise for the shuffled-paper floor,
    each naming the paper it was judged ``against``); points in no match become :class:`UnmatchedPoint`."""
    pairs: list[PairRecord] = []
    unmatched: list[UnmatchedPoint] = []
    for key in ("pairs", "floor_pairs"):
        for judge, per_system in result.get(key, {}).items():
            for system, per_paper in per_system.items():
                for paper, judged in per_paper.items():
                    found = _records(paper, system, judge, judged)
                    pairs += found[0]
                    unmatched += found[1]
    return pairs, unmatched


def _records(paper: str, system: str, judge: str, judged: dict) -> tuple[list[PairRecord], list[UnmatchedPoint]]:
    """One judged review's pairs and unmatched points (``judged``: one entry of the result's pairs)."""
    system_points, human_points = judged["system_points"], judged["human_points"]
    review_of = judged.get("human_point_review") or [None] * len(human_points)
    against = judged.get("against")
    pairs = [PairRecord(paper, system, judge, system_points[m["system_point"]], human_points[m["human_point"]],
                        m.get("similarity"), m.get("similarity_backward"), m.get("rationale") or None,
                        m.get("rationale_backward") or None, review_of[m["human_point"]],
                        bool(judged.get("both_directions")), against)
             for m in judged["matches"]]
    used_system = {m["system_point"] for m in judged["matches"]}
    used_human = {m["human_point"] for m in judged["matches"]}
    unmatched = [UnmatchedPoint(paper, system, judge, "system", text, against=against)
                 for i, text in enumerate(system_points) if i not in used_system]
    unmatched += [UnmatchedPoint(paper, system, judge, "human", text, review_of[i], against)
                  for i, text in enumerate(human_points) if i not in used_human]
    return pairs, unmatched


def _e(value: object) -> str:
    """Escaped for text and for quoted attribute values alike (``&<>"'``)."""
    return html.escape(str(value), quote=True)


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .4em;border-bottom:1px solid #ccc}
h3{font-size:1em;margin:.9em 0 .3em;font-weight:600}
.intro{max-width:60em;color:#444}
#filters{position:sticky;top:0;background:#eef1f5;padding:.5em .8em;border:1px solid #ccd;border-radius:4px;
 display:flex;gap:1.2em;flex-wrap:wrap;align-items:center;z-index:1}
#filters label{font-weight:600}#filters select,#filters input{margin-left:.3em}
table{border-collapse:collapse;width:100%;table-layout:fixed;background:#fff}
th,td{border:1px solid #ddd;padding:.3em .5em;vertical-align:top;text-align:left;overflow-wrap:anywhere}
th.mid,td.mid{width:17em}th{background:#f0f0f0}
tr.hit td{background:#e3f5e1}tr.hit td.mid{background:#c9ebc4}
.mark{font-weight:700;color:#1d6b1a;text-transform:uppercase;font-size:.85em}
.score{font-weight:700}.why{color:#555;font-size:.92em;margin-top:.2em}
tr.unmatched td{color:#777;font-style:italic}
.block.floor{border-left:4px solid #b8860b;padding-left:.6em;background:#fff8e6}
.floor-label{font-weight:700;color:#8a5a00;text-transform:uppercase;font-size:.85em}
.muted{color:#777;font-weight:400}
"""

SCRIPT = """
(function () {
  "use strict";
  var byId = function (id) { return document.getElementById(id); };
  function hitAt(row, t) {
    var reverse = row.getAttribute("data-reverse");
    var twoWay = row.hasAttribute("data-both") || reverse !== null;
    return parseFloat(row.getAttribute("data-score")) >= t && (!twoWay || (reverse !== null && parseFloat(reverse) >= t));
  }
  function apply() {
    var system = byId("f-system").value, judge = byId("f-judge").value, show = byId("f-show").value;
    var part = byId("f-part").value;
    var t = parseFloat(byId("f-threshold").value);
    var shownPairs = 0, shownHits = 0, shownBlocks = 0;
    document.querySelectorAll(".block").forEach(function (block) {
      var visible = (system === "" || block.dataset.system === system) &&
                    (judge === "" || block.dataset.judge === judge) &&
                    (part === "" || block.dataset.part === part);
      block.hidden = !visible;
      var hits = 0;
      block.querySelectorAll("tr.pair").forEach(function (row) {
        var hit = !isNaN(t) && hitAt(row, t);
        row.classList.toggle("hit", hit);
        row.querySelector(".mark").textContent = hit ? "hit" : "";
        row.hidden = (show === "hits" && !hit) || (show === "misses" && hit);
        if (hit) { hits += 1; }
        if (visible && !row.hidden) { shownPairs += 1; if (hit) { shownHits += 1; } }
      });
      block.querySelectorAll("tr.unmatched").forEach(function (row) { row.hidden = show !== "all"; });
      block.querySelector(".block-hits").textContent = String(hits);
      block.querySelector(".block-threshold").textContent = isNaN(t) ? "?" : String(t);
      if (visible) { shownBlocks += 1; }
    });
    document.querySelectorAll("section.paper").forEach(function (section) {
      section.hidden = section.querySelector(".block:not([hidden])") === null;
    });
    byId("count-pairs").textContent = String(shownPairs);
    byId("count-hits").textContent = String(shownHits);
    byId("count-blocks").textContent = String(shownBlocks);
  }
  ["f-system", "f-judge", "f-part", "f-threshold", "f-show"].forEach(function (id) {
    byId(id).addEventListener("input", apply);
    byId(id).addEventListener("change", apply);
  });
  apply();
})();
"""


def _options(values: Sequence[str], everything: str) -> str:
    return f'<option value="">{_e(everything)}</option>' + "".join(
        f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)


def _score_attr(name: str, value: float | None) -> str:
    return "" if value is None else f' {name}="{_e(repr(float(value)))}"'


def _from_review(review: int | None) -> str:
    return "" if review is None else f'<div class="muted">human review {review + 1}</div>'


def _pair_row(pair: PairRecord, threshold: float) -> str:
    hit = pair.hit(threshold)
    score = ("-" if pair.score is None else _number(pair.score)) + (
        "" if pair.reverse_score is None else f' <span class="muted">/ {_number(pair.reverse_score)} back</span>')
    why = [_e(r) for r in dict.fromkeys((pair.rationale, pair.reverse_rationale)) if r]
    why_html = f'<div class="why">{" <br>back: ".join(why)}</div>' if why else ""
    return (f'<tr class="pair{" hit" if hit else ""}"{_score_attr("data-score", pair.score)}'
            f'{_score_attr("data-reverse", pair.reverse_score)}{" data-both" if pair.both_directions else ""}>'
            f'<td>{_e(pair.system_point)}</td>'
            f'<td class="mid"><span class="score">{score}</span> <span class="mark">{"hit" if hit else ""}</span>'
            f"{why_html}</td><td>{_e(pair.human_point)}{_from_review(pair.human_review)}</td></tr>")


def _unmatched_row(point: UnmatchedPoint) -> str:
    left, right = (_e(point.text), "") if point.side == "system" else ("", _e(point.text))
    return (f'<tr class="unmatched"><td>{left}</td><td class="mid">unmatched</td>'
            f"<td>{right}{_from_review(point.human_review)}</td></tr>")


def _block(system: str, judge: str, against: str, matched: list[PairRecord], lone: list[UnmatchedPoint],
           threshold: float) -> str:
    """One judged review's table; ``against`` (the floor's other paper, "" for the review's own) labels the floor."""
    matched = sorted(matched, key=lambda p: -(p.score if p.score is not None else 0.0))
    hits = sum(p.hit(threshold) for p in matched)
    floor = (f'<span class="floor-label">shuffled-paper floor</span> <span class="muted">: this review judged '
             f"against the human reviews of paper</span> {_e(against)} <span class=\"muted\">(another paper: every "
             "hit here is a false hit)</span><br>") if against else ""
    return (f'<div class="block{" floor" if against else ""}" data-system="{_e(system)}" data-judge="{_e(judge)}" '
            f'data-part="{"floor" if against else "review"}">'
            f'<h3>{floor}{_e(system)} <span class="muted">judged by</span> {_e(judge)} <span class="muted">: '
            f'<span class="block-hits">{hits}</span> of {len(matched)} matched pairs hit at threshold '
            f'<span class="block-threshold">{_number(threshold)}</span></span></h3>'
            '<table><thead><tr><th>system point</th><th class="mid">judge: score (5-10) and reason</th>'
            f"<th>human point{f' (paper {_e(against)})' if against else ''}</th></tr></thead><tbody>"
            + "".join(_pair_row(p, threshold) for p in matched)
            + "".join(_unmatched_row(p) for p in sorted(lone, key=lambda p: p.side != "system"))
            + "</tbody></table></div>")


def audit_page(pairs: Sequence[PairRecord], unmatched: Sequence[UnmatchedPoint] = (), threshold: float = 7.0,
               title: str = "Judge audit: matched review points") -> str:
    """The page as one HTML string (inline style and script, nothing fetched).

    ``threshold`` is the one the page opens at (the evaluation's primary threshold); the reader can change it."""
    Blocks = dict[tuple[str, str, str], tuple[list[PairRecord], list[UnmatchedPoint]]]
    blocks: dict[str, Blocks] = defaultdict(dict)  # paper -> (system, judge, floor's other paper or "") -> rows
    for pair in pairs:
        blocks[pair.paper].setdefault((pair.system, pair.judge, pair.against or ""), ([], []))[0].append(pair)
    for point in unmatched:
        if point.side not in ("system", "human"):
            raise ValueError(f"an unmatched point's side is 'system' or 'human', not {point.side!r}")
        blocks[point.paper].setdefault((point.system, point.judge, point.against or ""), ([], []))[1].append(point)
    systems = sorted({system for per in blocks.values() for system, _, _ in per})
    judges = sorted({judge for per in blocks.values() for _, judge, _ in per})
    sections = []
    for paper in sorted(blocks):
        parts = [f'<section class="paper" data-paper="{_e(paper)}"><h2>Paper {_e(paper)}</h2>']
        for (system, judge, against), (matched, lone) in sorted(blocks[paper].items()):  # a review, then its floor
            parts.append(_block(system, judge, against, matched, lone, threshold))
        parts.append("</section>")
        sections.append("".join(parts))
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    policy = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_e(policy)}">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        '<p class="intro">Each row is a pair of points the judge matched: the system review\'s point on the left, '
        "the human reviews' point on the right, between them the judge's score on the 5-10 scale and its reason "
        "(a chat judge's rationale; the offline judge's cosine similarity). A pair is a hit when its score reaches "
        "the threshold (for a chat judge, in both matching directions). Points the judge paired with nothing "
        "follow each table. Read the hits: a judge that rewards a restated summary or its own model's wording "
        "shows it here. Tables marked <b>shuffled-paper floor</b> judge the same review against another paper's "
        "human reviews: their hits are false hits, the floor the report subtracts.</p>"
        '<div id="filters" role="search">'
        f'<span><label for="f-system">System</label><select id="f-system">{_options(systems, "all systems")}'
        "</select></span>"
        f'<span><label for="f-judge">Judge</label><select id="f-judge">{_options(judges, "all judges")}'
        "</select></span>"
        '<span><label for="f-part">Part</label><select id="f-part"><option value="">reviews and their floor'
        '</option><option value="review">reviews of their own paper</option><option value="floor">shuffled-paper '
        "floor only</option></select></span>"
        '<span><label for="f-threshold">Hit threshold</label><input id="f-threshold" type="number" min="5" '
        f'max="10" step="0.5" value="{_e(_number(threshold))}"></span>'
        '<span><label for="f-show">Show</label><select id="f-show"><option value="all">all pairs and unmatched '
        'points</option><option value="pairs">matched pairs</option><option value="hits">hits only</option>'
        '<option value="misses">non-hits only</option></select></span>'
        '<span class="muted">showing <b id="count-pairs">-</b> pairs, <b id="count-hits">-</b> hits in '
        '<b id="count-blocks">-</b> reviews</span></div>'
        + ("".join(sections) if sections else "<p>No matched points to show.</p>")
        + f"<script>{SCRIPT}</script></body></html>\n")


def write_audit_page(path: str | Path, pairs: Sequence[PairRecord], unmatched: Sequence[UnmatchedPoint] = (),
                     threshold: float = 7.0) -> Path:
    """Writes :func:`audit_page` to ``path`` (UTF-8) and returns the path."""
    path = Path(path)
    path.write_text(audit_page(pairs, unmatched, threshold), encoding="utf-8")
    return path
