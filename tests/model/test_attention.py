"""s2_attention against a masked softmax written straight from the rule in the issue (float64, CPU)."""

import math

import pytest
import torch

from lightning_review.model.attention import document_causal_attention, s2_attention


def rule_reference(q, k, v, group_size, doc_lens):
    """Loop-built mask from the written rule; independent of the package's mask code."""
    batch, heads, seq, dim = q.shape
    ratio = heads // k.shape[1]
    mask = torch.zeros(batch, heads, seq, seq, dtype=torch.bool)
    for b in range(batch):
        lens = doc_lens[b] if doc_lens is not None else [seq]
        start = 0
        for n in lens:
            for h in range(heads):
                for i in range(n):
                    for j in range(i + 1):
                        if group_size is None or n <= group_size:  # a document within one group: plain causal
                            ok = True
                        elif h < heads // 2:
                            ok = j // group_size == i // group_size
                        else:
                            g2 = group_size // 2
                            ok = (j + g2) // group_size == (i + g2) // group_size
                        mask[b, h, start + i, start + j] = ok
            start += n
        for p in range(start, seq):  # padding: only itself
            mask[b, :, p, p] = True
    kk = k.repeat_interleave(ratio, 1)
    vv = v.repeat_interleave(ratio, 1)
    scores = q @ kk.transpose(-1, -2) / math.sqrt(dim)
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, -1) @ vv, mask


CASES = {
    "one doc divisible": dict(batch=1, seq=32, group=8, doc_lens=None),
    "one doc not divisible": dict(batch=1, seq=30, group=8, doc_lens=[[30]]),
    "several docs": dict(batch=1, seq=40, group=8, doc_lens=[[13, 7, 20]]),
    "batch, different layouts, padding": dict(batch=3, seq=36, group=6, doc_lens=[[10, 26], [36], [5, 9, 11]]),
    "group >= length is causal": dict(batch=2, seq=24, group=64, doc_lens=[[24], [10, 8]]),
    "full causal per doc": dict(batch=2, seq=24, group=None, doc_lens=[[11, 13], [20]]),
}


# (query heads, key/value heads): 9 and 3 are SmolLM2-135M's, a real checkpoint with an odd number of heads whose
# shifted part (heads 4..8) shares key/value head 1 with the plain part
HEADS = [(4, 4), (4, 2), (9, 3), (3, 1)]


@pytest.mark.parametrize("backend", ["grouped", "reference", "flex"])
@pytest.mark.parametrize("heads, kv_heads", HEADS)
@pytest.mark.parametrize("case", list(CASES))
def test_matches_rule_outputs_and_gradients(case, heads, kv_heads, backend):
    c = CASES[case]
    torch.manual_seed(0)
    dim = 8
    q = torch.randn(c["batch"], heads, c["seq"], dim, dtype=torch.float64, requires_grad=True)
    k = torch.randn(c["batch"], kv_heads, c["seq"], dim, dtype=torch.float64, requires_grad=True)
    v = torch.randn(c["batch"], kv_heads, c["seq"], dim, dtype=torch.float64, requires_grad=True)
    expected, mask = rule_reference(q, k, v, c["group"], c["doc_lens"])
    assert mask.any(-1).all()  # every query, padding included, has a key: outputs stay finite
    if backend == "flex":  # FlexAttention has no backward on CPU: outputs here, gradients in benchmarks/attention.py
        got = s2_attention(q.detach(), k.detach(), v.detach(), c["group"], c["doc_lens"], backend=backend)
        torch.testing.assert_close(got, expected.detach())
        return
    got = s2_attention(q, k, v, c["group"], c["doc_lens"], backend=backend)
    assert torch.isfinite(got).all()
    grad_out = torch.randn_like(expected)
    # padding outputs are ignored by the loss: compare gradients through real tokens only
    lens = c["doc_lens"] or [[c["seq"]]] * c["batch"]
    real_tok = torch.zeros(c["batch"], 1, c["seq"], 1, dtype=torch.float64)
    for b, row in enumerate(lens):
        real_tok[b, :, : sum(row)] = 1
    g_exp = torch.autograd.grad((expected * grad_out * real_tok).sum(), (q, k, v))
    g_got = torch.autograd.grad((got * grad_out * real_tok).sum(), (q, k, v))
    torch.testing.assert_close(got, expected)
    for a, b in zip(g_got, g_exp):
        torch.testing.assert_close(a, b)


def test_group_at_least_length_equals_causal_sdpa():
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 4, 16, 8, dtype=torch.float64) for _ in range(3))
    full = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(s2_attention(q, k, v, 16), full)
    torch.testing.assert_close(document_causal_attention(q, k, v), full)


def test_s2_differs_from_causal_when_groups_split_the_document():
    torch.manual_seed(2)
    q, k, v = (torch.randn(1, 4, 32, 8, dtype=torch.float64) for _ in range(3))
    assert not torch.allclose(s2_attention(q, k, v, 8), document_causal_attention(q, k, v))


def test_shifted_groups_never_wrap():
    """LongLoRA's roll lets the first half-group of the shifted heads see the sequence's last tokens."""
    torch.manual_seed(3)
    q, k, v = (torch.randn(1, 2, 16, 4, dtype=torch.float64) for _ in range(3))
    base = s2_attention(q, k, v, 8)
    v2 = v.clone()
    v2[:, :, -4:] += 10.0  # change the last tokens
    changed = s2_attention(q, k, v2, 8)
    # shifted head (index 1): its first half-group (positions 0..3) must not move
    torch.testing.assert_close(changed[:, 1, :4], base[:, 1, :4])


def test_documents_do_not_see_each_other():
    torch.manual_seed(4)
    q, k, v = (torch.randn(1, 4, 30, 8, dtype=torch.float64) for _ in range(3))
    lens = [[10, 12, 8]]
    base = s2_attention(q, k, v, 4, lens)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 10:22] = torch.randn_like(k2[:, :, 10:22])
    v2[:, :, 10:22] = torch.randn_like(v2[:, :, 10:22])
    other = s2_attention(q, k2, v2, 4, lens)
    torch.testing.assert_close(other[:, :, :10], base[:, :, :10])
    torch.testing.assert_close(other[:, :, 22:], base[:, :, 22:])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(heads=1, group=4), "at least 2 heads"),
        (dict(group=3), "even number"),
        (dict(doc_lens=[[20, 20]]), "sums to 40"),
        (dict(doc_lens=[[0, 4]]), "positive"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    heads = kwargs.get("heads", 4)
    q = torch.randn(1, heads, 32, 8)
    k = v = torch.randn(1, heads, 32, 8)
    with pytest.raises(ValueError, match=message):
        s2_attention(q, k, v, kwargs.get("group", 8), kwargs.get("doc_lens"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA backends (flash SDPA, compiled FlexAttention)")
@pytest.mark.parametrize("backend", ["grouped", "flex"])
@pytest.mark.parametrize("heads, kv_heads", [(9, 3), (32, 8)])
@pytest.mark.parametrize("doc_lens", [[[300, 724], [1024]], [[300, 500, 100], [1000]]])
def test_cuda_backends_match_the_reference_with_odd_and_even_heads(backend, heads, kv_heads, doc_lens):
    """bf16 on the GPU, packed rows (full, and with padding): outputs and gradients of the fast backends against
    the dense reference."""
    torch.manual_seed(0)
    seq, dim, group = 1024, 64, 256
    shape_q, shape_kv = (2, heads, seq, dim), (2, kv_heads, seq, dim)
    q, k, v = (torch.randn(s, device="cuda", dtype=torch.bfloat16, requires_grad=True)
               for s in (shape_q, shape_kv, shape_kv))
    grad_out = torch.randn(shape_q, device="cuda", dtype=torch.bfloat16)
    results = {}
    for name in ("reference", backend):
        out = s2_attention(q, k, v, group, doc_lens, backend=name)
        results[name] = (out, *torch.autograd.grad((out.float() * grad_out.float()).sum(), (q, k, v)))
    for got, expected in zip(results[backend], results["reference"]):
        torch.testing.assert_close(got.float(), expected.float(), atol=2e-2, rtol=2e-2)

