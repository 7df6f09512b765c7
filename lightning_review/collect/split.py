"""A paper-with-reviews file split by paper (a paper's reviews never straddle two files) into named parts, seeded:
the same file, fractions and seed give the same parts, whatever order the lines are in; and the same file as one
review a line (the ``jsonl`` format)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from ..data.records import RecordError, iter_json_objects, record_id
from ..errors import UserError, finite_number
from ..safe_paths import atomic_writer


def split_paths(path: str | Path, names) -> dict[str, Path]:
    path = Path(path)
    return {name: path.with_name(f"{path.stem}.{name}{path.suffix or '.jsonl'}") for name in names}


def check_fractions(fractions: dict[str, float]) -> None:
    """--split's fractions: non-negative numbers (not NaN, which every comparison lets through), adding up to 1;
    checked before a crawl, not after it."""
    numbers = all(finite_number(f) for f in (fractions or {}).values())
    if (not fractions or not numbers or any(f < 0 for f in fractions.values())
            or abs(sum(fractions.values()) - 1) > 1e-6):
        raise UserError(f"--split: fractions must be non-negative and add up to 1, got {fractions} (e.g. "
                        '{"train": 0.8, "validation": 0.1, "test": 0.1})')


def required_id(obj: dict, where: str, missing: str, label: str = "field 'id'", key: str = "id") -> str:
    """The id ``obj[key]`` gives, by the readers' rule (data.records.record_id: a string, or a whole number as its
    digits; ``12.0``, ``true``, ``null``, a list or an object are a RecordError naming ``where`` and ``label``), for a
    line that cannot do without one (no "leave the field out" in its fix), and a line without
    an id (or a blank one) is a RecordError ``"<where>: <missing>"`` (reason missing_id)."""
    given = record_id({"id": obj[key]} if key in obj else {}, where, label, optional=False)
    if given is None:
        raise RecordError(f"{where}: {missing}", "missing_id")
    return given


def paper_id_of_line(obj: dict, where: str) -> str:
    """The paper id of a line of a paper-with-reviews file (required_id), so that the split and the pairs name a
    paper as prepare and fit will. A line without one cannot be split by paper nor name its pairs."""
    return required_id(obj, where, "a paper without 'id' (or with a blank one) cannot be split by paper; give each "
                                   'line its paper\'s id ("id": "...") or remove the line')


def split_file(path: str | Path, fractions: dict[str, float], seed: int = 0) -> dict[str, dict]:
    """Write ``<stem>.<name>.jsonl`` for each part; returns {name: {"file", "papers"}}. Part sizes are the
    fractions of the papers, rounded by largest remainder so that they add up."""
    check_fractions(fractions)
    lines: dict[str, str] = {}
    for where, obj in iter_json_objects(path):
        paper_id = paper_id_of_line(obj, where)
        if paper_id in lines:
            raise UserError(f"{where}: paper {paper_id!r} appears twice; one line a paper")
        lines[paper_id] = json.dumps(obj, ensure_ascii=False)
    ids = sorted(lines)
    random.Random(seed).shuffle(ids)
    exact = {name: f * len(ids) for name, f in fractions.items()}
    sizes = {name: int(x) for name, x in exact.items()}
    for name in sorted(exact, key=lambda n: exact[n] - sizes[n], reverse=True)[: len(ids) - sum(sizes.values())]:
        sizes[name] += 1
    out, start = {}, 0
    for name, target in split_paths(path, fractions).items():
        part = ids[start:start + sizes[name]]
        start += sizes[name]
        with atomic_writer(target) as f:
            for paper_id in sorted(part):
                f.write(lines[paper_id] + "\n")
        out[name] = {"file": str(target), "papers": len(part)}
    return out


def write_pairs(path: str | Path, pairs_file: str | Path) -> int:
    """``pairs_file``: each review of ``path`` on its own line, ``{"id": "<paper>#<i>", "paper", "review",
    "title", "rating"}`` (``paper#i`` names review i of ``paper``, as the project's readers expect). Returns the
    number of lines."""
    count = 0
    with atomic_writer(pairs_file) as f:
        for where, obj in iter_json_objects(path):
            paper_id = paper_id_of_line(obj, where)
            for i, review in enumerate(obj.get("reviews") or []):
                f.write(json.dumps({"id": f"{paper_id}#{i}", "paper": obj["paper"], "review": review["text"],
                                    "title": obj.get("title"), "rating": review.get("rating")},
                                   ensure_ascii=False) + "\n")
                count += 1
    return count
