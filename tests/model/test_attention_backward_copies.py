"""The grouped backend's backward copies no gradient into a zero-filled batch-sized tensor per row (``t[b]``'s
backward): one row's gradient flows back through a view, several rows' through one stack."""

import pytest
import torch

from lightning_review.model.attention import s2_attention


def backward_nodes(output: torch.Tensor) -> set[str]:
    seen, stack, names = set(), [output.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return names


@pytest.mark.parametrize("batch, doc_lens", [(1, [[20, 12]]), (2, [[32], [10, 22]])])
def test_no_row_is_selected_with_a_zero_filled_backward(batch, doc_lens):
    q, k, v = (torch.randn(batch, heads, 32, 8, requires_grad=True) for heads in (4, 2, 2))
    out = s2_attention(q, k, v, 8, doc_lens, backend="grouped")
    nodes = backward_nodes(out)
    assert "SelectBackward0" not in nodes, nodes
    out.sum().backward()  # and the gradients still arrive, finite, for every input
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))
