"""Packing tokenised examples into rows, and collating rows into batches that keep documents apart.

A batch carries ``doc_lens`` (the documents of each row, in order) and ``position_ids`` that restart at 0 for each
document: the attention (lightning_review.model.attention) uses them so that no document sees another.
"""

from __future__ import annotations

import bisect
from typing import Sequence

import numpy as np
import torch

from .prompt import IGNORE_INDEX

# collate_rows' position_ids stay within artifacts.model_limits.MAX_SEQ_LENGTH (2**24: transformers' Llama RoPE takes
# them as float32): data.max_seq_length is held to it (data.datamodule.max_seq_length_problem).


def pack_best_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Bins of example indices, each summing to at most ``capacity``.

    Best-fit decreasing (never worse than first-fit decreasing's 11/9 bound) in O(n log n): the open bins are kept
    sorted by free space and each example, longest first, goes to the fullest bin it fits in.
    """
    for i, n in enumerate(lengths):
        if n > capacity:
            raise ValueError(f"example {i} has {n} tokens, more than the row capacity {capacity}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    free: list[tuple[int, int]] = []  # (free tokens, bin id), sorted
    bins: list[list[int]] = []
    for i in order:
        n = lengths[i]
        at = bisect.bisect_left(free, (n, -1))
        if at < len(free):
            space, b = free.pop(at)
        else:
            space, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        bisect.insort(free, (space - n, b))
    return bins


def packing_efficiency(lengths: Sequence[int], bins: Sequence[Sequence[int]], capacity: int) -> float:
    """Real tokens over all tokens of the padded rows."""
    return sum(lengths) / (len(bins) * capacity) if bins else 0.0


def collate_rows(rows: Sequence[Sequence[dict]], pad_id: int, row_length: int | None = None,
                 multiple_of: int = 64) -> dict:
    """Rows of examples -> a padded batch with position_ids, doc_lens and ids.

    An example has ``input_ids`` (a list or array) and ``prompt_length``: the labels are the ids after the prompt
    (0 for text the loss covers whole), so the tokenize cache's read-only arrays are used without copies.
    ``row_length`` fixes the width (packing); otherwise the longest row rounded up to ``multiple_of``.
    """
    widths = [sum(len(ex["input_ids"]) for ex in row) for row in rows]
    width = row_length or -(-max(widths) // multiple_of) * multiple_of
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
    position_ids = np.zeros((len(rows), width), dtype=np.int64)
    doc_lens: list[list[int]] = []
    ids = [[ex.get("id") for ex in row] for row in rows]  # which examples a batch holds: data order is auditable
    for r, row in enumerate(rows):
        start, lens = 0, []
        for ex in row:
            n = len(ex["input_ids"])
            input_ids[r, start:start + n] = ex["input_ids"]
            keep = start + ex["prompt_length"]
            labels[r, keep:start + n] = input_ids[r, keep:start + n]
            position_ids[r, start:start + n] = np.arange(n)
            lens.append(n)
            start += n
        doc_lens.append(lens)
    return {"input_ids": torch.from_numpy(input_ids), "labels": torch.from_numpy(labels),
            "position_ids": torch.from_numpy(position_ids), "doc_lens": doc_lens, "ids": ids}
