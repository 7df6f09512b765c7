"""The ``varlen`` backend's sequence boundaries and head halves, on the CPU through a varlen_attn written from
torch's documentation (one causal SDPA per sequence); the flash kernel itself runs in the CUDA test below."""

import pytest
import torch
import torch.nn.functional as F

from lightning_review.errors import UserError
from lightning_review.model.attention import (_normalise_doc_lens, _varlen_bounds, _varlen_halves, s2_attention,
                                              varlen_boundaries)

from .test_attention import CASES, HEADS, rule_reference


def documented_varlen_attn(q, k, v, cu_q, cu_k, max_q, max_k, *, window_size=None, is_causal=None, scale=None,
                           enable_gqa=False):
    """(tokens, heads, dim) inputs; sequence i is tokens [cu[i], cu[i+1]); causal inside each."""
    assert torch.equal(cu_q, cu_k) and cu_q.dtype == torch.int32
    assert window_size == (-1, 0) or is_causal is True
    bounds = cu_q.tolist()
    assert bounds[0] == 0 and bounds[-1] == q.shape[0] and bounds == sorted(bounds)
    assert max_q == max(b - a for a, b in zip(bounds, bounds[1:]))
    outs = []
    for a, b in zip(bounds, bounds[1:]):
        qs, ks, vs = (t[a:b].transpose(0, 1) for t in (q, k, v))
        outs.append(F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scale,
                                                   enable_gqa=enable_gqa).transpose(0, 1))
    return torch.cat(outs)


def test_boundaries_cut_documents_into_groups_and_padding_into_one_sequence():
    layout = ((10, 26), (5,))
    # row 0: doc 10 (groups of 8: 8 + 2), doc 26 (8+8+8+2); row 1 starts at 36: doc 5, then 31 padding tokens in
    # pieces of a group at most (8+8+8+7)
    assert varlen_boundaries(layout, 36, 8, False) == ([0, 8, 10, 18, 26, 34, 36, 41, 49, 57, 65, 72], 8)
    # shifted: half a group first, then full groups; the padding as in the plain half
    assert varlen_boundaries(layout, 36, 8, True) == ([0, 4, 10, 14, 22, 30, 36, 41, 49, 57, 65, 72], 8)
    assert varlen_boundaries(((36,),), 36, None, False) == ([0, 36], 36)
    assert varlen_boundaries(((30,),), 36, None, False) == ([0, 30, 36], 30)


def test_bounds_made_in_validation_serve_a_training_backward():
    """Validation runs under inference_mode; the cached boundaries it made must not be inference tensors, which
    varlen_attn could not save for a training step's backward."""
    with torch.inference_mode():
        bounds, _ = _varlen_bounds(((7, 9),), 20, None, False, torch.device("cpu"))
    again, _ = _varlen_bounds(((7, 9),), 20, None, False, torch.device("cpu"))
    assert again is bounds and not bounds.is_inference()


@pytest.mark.parametrize("heads, kv_heads", HEADS)
@pytest.mark.parametrize("case", list(CASES))
def test_real_tokens_match_the_rule_outputs_and_gradients(case, heads, kv_heads):
    c = CASES[case]
    torch.manual_seed(0)
    dim = 8
    q = torch.randn(c["batch"], c["seq"], heads, dim, dtype=torch.float64).transpose(1, 2).requires_grad_()
    k, v = (torch.randn(c["batch"], c["seq"], kv_heads, dim, dtype=torch.float64).transpose(1, 2).requires_grad_()
            for _ in range(2))
    expected, _ = rule_reference(q, k, v, c["group"], c["doc_lens"])
    layout = _normalise_doc_lens(c["doc_lens"], c["batch"], c["seq"])
    got = _varlen_halves(q, k, v, layout, c["group"], None, documented_varlen_attn, {"window_size": (-1, 0)}, True)
    assert got.shape == expected.shape and torch.isfinite(got).all()
    real = torch.zeros(c["batch"], 1, c["seq"], 1, dtype=torch.float64)
    for b, row in enumerate(layout):
        real[b, :, :sum(row)] = 1
    torch.testing.assert_close(got * real, expected * real)
    grad_out = torch.randn_like(expected)
    g_exp = torch.autograd.grad((expected * grad_out * real).sum(), (q, k, v))
    g_got = torch.autograd.grad((got * grad_out * real).sum(), (q, k, v))
    for a, b in zip(g_got, g_exp):
        torch.testing.assert_close(a, b)


def test_is_causal_flag_of_torch_2_10():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 4, 24, 8).transpose(1, 2).contiguous().transpose(1, 2) for _ in range(3))
    got = _varlen_halves(q, k, v, ((24,),), 8, None, documented_varlen_attn, {"is_causal": True}, False)
    expected, _ = rule_reference(q.double(), k.double(), v.double(), 8, None)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-5)


def test_cpu_is_refused_with_the_fix():
    q = torch.randn(1, 4, 16, 8)
    with pytest.raises(UserError, match="CUDA only: choose 'grouped'"):
        s2_attention(q, q, q, 8, backend="varlen")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="flash varlen kernels")
@pytest.mark.parametrize("heads, kv_heads", [(9, 3), (32, 8), (40, 40)])
@pytest.mark.parametrize("doc_lens", [[[300, 724], [1024]], [[300, 500, 100], [1000]], [[1024], [1024]]])
def test_cuda_varlen_matches_the_reference_on_real_tokens(heads, kv_heads, doc_lens):
    """bf16 flash varlen against the float32 dense reference: outputs on real tokens and every gradient, by the
    relative error of the whole tensor (bf16 rounding gives 2e-3 to 3e-3 in benchmarks/attention.py's check; a wrong
    group or document boundary gives errors of order 1)."""
    assert_cuda_backend_matches_the_reference("varlen", heads, kv_heads, doc_lens, seq=1024, group=256)


def assert_cuda_backend_matches_the_reference(backend: str, heads: int, kv_heads: int, doc_lens, seq: int,
                                              group: int, dim: int = 128) -> None:
    """bf16 ``backend`` on CUDA against the float32 dense reference, rows in transformers' memory layout: outputs on
    real tokens and every gradient, each by the relative error of the whole tensor."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(len(doc_lens), seq, h, dim, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
               .requires_grad_() for h in (heads, kv_heads, kv_heads))
    grad_out = torch.randn(len(doc_lens), heads, seq, dim, device="cuda")
    real = torch.zeros(len(doc_lens), 1, seq, 1, device="cuda")
    for b, row in enumerate(doc_lens):
        real[b, :, :sum(row)] = 1
    results = {}
    for name, inputs in (("reference", [t.detach().float().requires_grad_() for t in (q, k, v)]),
                         (backend, [q, k, v])):
        out = s2_attention(*inputs, group, doc_lens, backend=name).float() * real
        results[name] = (out, *torch.autograd.grad((out * grad_out).sum(), inputs))
    for got, expected in zip(results[backend], results["reference"]):
        assert torch.isfinite(got).all()
        assert ((got.float() - expected).norm() / expected.norm()).item() < 1e-2
