"""Which SDPA calls of a packed row run under the ragged pieces' kernel limit (on CUDA: not cuDNN, whose plans are
made per shape): the pieces of other lengths than a whole or a half group, and only those."""

from contextlib import contextmanager

import torch

from lightning_review.model.attention import _grouped_groups, _regular

from .test_attention import rule_reference


def test_whole_and_half_groups_are_regular_other_lengths_are_not():
    assert _regular(8, 8) and _regular(4, 8)
    assert not any(_regular(g, 8) for g in (1, 3, 5, 7, 12))
    assert not _regular(8, None)  # full causal attention per document: document lengths, unbounded


def test_only_the_ragged_pieces_run_under_the_limit_and_the_result_is_the_rule():
    entered = []

    @contextmanager
    def limit():
        entered.append(1)
        yield

    torch.manual_seed(0)
    heads, dim, seq, group, lens = 4, 8, 40, 8, [[13, 7, 20]]
    q, k, v = (torch.randn(1, heads, seq, dim, dtype=torch.float64) for _ in range(3))
    got = _grouped_groups(q, k, v, tuple(tuple(r) for r in lens), group, None, limit)
    # plain half: 13 -> 8 | 5, 7 -> 7, 20 -> 8+8 | 4; shifted: 13 -> 4 | 8 | 1, 7 -> 7, 20 -> 4 | 8+8
    assert len(entered) == 4  # 5 and 7; 1 and 7
    expected, _ = rule_reference(q, k, v, group, lens)
    torch.testing.assert_close(got, expected)
