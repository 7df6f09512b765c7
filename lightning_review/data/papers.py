"""Which records are reviews of one paper: the unit of the train/validation split and of the paper counts.

Two records are one paper when they share a paper id, or when their paper texts are equal once whitespace is
normalised (a trailing newline does not make another paper). Sharing either is enough, so a paper given once with an
id and once without, or under two ids with one text, still lands on one side of a split. One id carrying genuinely
different texts is a data error (an id reused for two papers, or paper and review columns swapped) and is reported
by ``id_conflicts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .records import Record, text_key


def paper_groups(records: Sequence[Record]) -> list[list[int]]:
    """Indices of ``records`` grouped by paper (shared id or shared normalised text), groups and members in the
    order they first appear."""
    parent = list(range(len(records)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, record in enumerate(records):
        keys = [f"text:{text_key(record.paper)}"]
        if record.paper_id is not None:
            keys.append(f"id:{record.paper_id}")
        for key in keys:
            j = first.setdefault(key, i)
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)  # the earliest record stays the root: groups keep file order
    groups: dict[int, list[int]] = {}
    for i in range(len(records)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def first_of_each_paper(records: Sequence[Record]) -> list[Record]:
    """One record per paper (its first), in file order: for what needs each paper's text once, however many
    reviews it has (context-extension rows, perplexity)."""
    return [records[group[0]] for group in paper_groups(records)]


def count_papers(records: Sequence[Record]) -> int:
    return len(paper_groups(records))


@dataclass(frozen=True)
class IdConflict:
    """One paper id given to several different paper texts: ``wheres`` holds, for each distinct text, where its
    records were read (file:line)."""

    paper_id: str
    wheres: tuple[tuple[str, ...], ...]

    def describe(self) -> str:
        texts = "; ".join(f"text {n + 1} at {', '.join(w[:3])}{' ...' if len(w) > 3 else ''}"
                          for n, w in enumerate(self.wheres))
        return f"paper id {self.paper_id!r} has {len(self.wheres)} different paper texts ({texts})"


def id_conflicts(records: Sequence[Record]) -> list[IdConflict]:
    """Paper ids whose records carry texts that differ beyond whitespace, in the order the ids first appear."""
    texts: dict[str, dict[str, list[str]]] = {}
    for record in records:
        if record.paper_id is not None:
            by_text = texts.setdefault(record.paper_id, {})
            by_text.setdefault(text_key(record.paper), []).append(record.where or record.id)
    return [IdConflict(pid, tuple(tuple(w) for w in by_text.values()))
            for pid, by_text in texts.items() if len(by_text) > 1]


def looks_swapped(records: Sequence[Record]) -> tuple[float, float] | None:
    """(mean review characters, mean paper characters) when the reviews are the longer on average, a sign that the
    paper and review columns are swapped; None otherwise."""
    if not records:
        return None
    review = sum(len(r.review) for r in records) / len(records)
    paper = sum(len(r.paper) for r in records) / len(records)
    return (review, paper) if review > paper else None
