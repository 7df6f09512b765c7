"""Whether a field name in a user's data is a plain misspelling of another (the readers' "did you mean" hint): case
and separators aside, a few edits at most, fewer for short names, since a wrong hint misleads more than none."""

from __future__ import annotations


def normal_name(name: str) -> str:
    """A field name without case or separators: ``Is_Meta-Review`` -> ``ismetareview``."""
    return "".join(c for c in name.lower() if c not in "_- ")


def edit_distance(a: str, b: str) -> int:
    """The edits from ``a`` to ``b``: characters inserted, deleted, replaced, or two next to each other swapped.
    Written here: difflib's similarity ratio cannot say "one edit", and a warning's hint does not earn a dependency
    (rapidfuzz, jellyfish) for these dozen lines."""
    rows = [list(range(len(b) + 1))]
    for i, x in enumerate(a, 1):
        row = [i]
        for j, y in enumerate(b, 1):
            row.append(min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (x != y)))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def misspelling_edits(name: str, intended: str) -> int | None:
    """The edits from ``name`` to ``intended``, case and ``_ - `` aside, where that is a plain misspelling: 0 for a
    name of up to 3 letters (``ID``), 1 up to 7 (``ratng``; a swap, ``reveiw``, is one), 2 beyond; else None."""
    theirs, ours = normal_name(name), normal_name(intended)
    edits = edit_distance(theirs, ours)
    return edits if edits <= (0 if len(ours) <= 3 else 1 if len(ours) <= 7 else 2) else None
