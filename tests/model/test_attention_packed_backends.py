"""Which SDPA calls of a packed row run under the ragged pieces' kernel limit (on CUDA: not cuDNN, whose plans are
made per shape): the pieces of other lengths than a whole or a half group, and only those."""

from contextlib import contextmanager

import pytest
import torch

from lightning_review.model import attention
from lightning_review.model.attention import _grouped_groups, _regular

from .test_attention import rule_reference
from .test_attention_varlen import assert_cuda_backend_matches_the_reference


def counting_limit():
    """A stand-in for the kernel limit that counts the calls made under it."""
    entered = []

    @contextmanager
    def limit():
        entered.append(1)
        yield

    return entered, limit


def test_whole_and_half_groups_are_regular_other_lengths_are_not():
    assert _regular(8, 8) and _regular(4, 8)
    assert not any(_regular(g, 8) for g in (1, 3, 5, 7, 12))
    assert not _regular(8, None)  # full causal attention per document: document lengths, unbounded


def test_only_the_ragged_pieces_run_under_the_limit_and_the_result_is_the_rule():
    entered, limit = counting_limit()
    torch.manual_seed(0)
    heads, dim, seq, group, lens = 4, 8, 40, 8, [[13, 7, 20]]
    q, k, v = (torch.randn(1, heads, seq, dim, dtype=torch.float64) for _ in range(3))
    got = _grouped_groups(q, k, v, tuple(tuple(r) for r in lens), group, None, limit)
    # plain half: 13 -> 8 | 5, 7 -> 7, 20 -> 8+8 | 4; shifted: 13 -> 4 | 8 | 1, 7 -> 7, 20 -> 4 | 8+8
    assert len(entered) == 4  # 5 and 7; 1 and 7
    expected, _ = rule_reference(q, k, v, group, lens)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("heads, kv_heads", [(4, 4), (4, 2)])
def test_ragged_pieces_padded_to_few_lengths_give_the_rule_outputs_and_gradients(monkeypatch, heads, kv_heads):
    """RAGGED_PIECES_PADDED_TO: the ragged pieces zero-padded at their end (to 4 tokens here), none left under the
    limit; causal attention, so the real tokens' outputs and every gradient are the rule's."""
    monkeypatch.setattr(attention, "RAGGED_PIECES_PADDED_TO", 4)
    shapes = []
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording_sdpa(q, *args, **kwargs):
        shapes.append(q.shape[-2])
        return real_sdpa(q, *args, **kwargs)

    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", recording_sdpa)
    entered, limit = counting_limit()
    torch.manual_seed(0)
    dim, seq, group, lens = 8, 44, 8, [[13, 7, 20]]  # 4 tokens of padding
    q = torch.randn(1, heads, seq, dim, dtype=torch.float64, requires_grad=True)
    k, v = (torch.randn(1, kv_heads, seq, dim, dtype=torch.float64, requires_grad=True) for _ in range(2))
    got = _grouped_groups(q, k, v, tuple(tuple(r) for r in lens), group, None, limit)
    assert entered == [] and all(n % 4 == 0 for n in shapes)  # ragged 5, 7, 1, 7 ran as 8, 8, 4, 8
    expected, _ = rule_reference(q, k, v, group, lens)
    real = torch.zeros(1, 1, seq, 1, dtype=torch.float64)
    real[..., :40, :] = 1
    torch.testing.assert_close(got * real, expected * real)
    grad_out = torch.randn_like(expected)
    for a, b in zip(torch.autograd.grad((got * grad_out * real).sum(), (q, k, v)),
                    torch.autograd.grad((expected * grad_out * real).sum(), (q, k, v))):
        torch.testing.assert_close(a, b)


def test_whole_groups_go_to_cudnn_from_groups_of_4096_tokens(monkeypatch):
    """By measurement on one H200: 16K and 32K mix rows (groups of 4,096 and 8,192) faster, an 8K one slower."""
    assert attention.cudnn_pieces(4096) and attention.cudnn_pieces(8192)
    assert not attention.cudnn_pieces(2048) and not attention.cudnn_pieces(None)
    monkeypatch.setattr(attention, "CUDNN_PIECES_FROM_GROUP", None)
    assert not attention.cudnn_pieces(8192)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="cuDNN and flash SDPA")
@pytest.mark.parametrize("padded_to", [0, 256])
def test_cuda_packed_rows_with_cudnn_pieces_match_the_reference(monkeypatch, padded_to):
    """The routed path at a small group (whole and half groups on cuDNN, the others on flash or padded onto cuDNN):
    bf16 outputs on real tokens and every gradient against the float32 reference."""
    monkeypatch.setattr(attention, "CUDNN_PIECES_FROM_GROUP", 2)
    monkeypatch.setattr(attention, "RAGGED_PIECES_PADDED_TO", padded_to)
    assert_cuda_backend_matches_the_reference("grouped", 8, 4, [[700, 1000, 300], [1500, 548]], seq=2048, group=512)
