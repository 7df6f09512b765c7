"""The equal-memory search and the executed-FLOP count of benchmarks/train_step.py (pure functions, CPU)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
train_step = pytest.importorskip("train_step")


def linear_peaks(base: float, per_layer: float, layers: int):
    calls = []

    def peak_at(count: int) -> float:
        calls.append(count)
        return base + per_layer * (layers - count)

    return peak_at, calls


@pytest.mark.parametrize("base, per_layer, budget, expected", [
    (18.5, 1.0, 19.1, 40),  # not even one layer fits
    (10.0, 1.0, 25.5, 25),  # 15 layers fit, the 16th does not
    (10.0, 1.0, 100.0, 0),  # everything fits
    (20.0, 1.0, 19.0, 40),  # over the budget with every layer checkpointed
    (10.0, 1.0, 11.2, 39),  # exactly one
])
def test_fit_finds_the_fewest_checkpointed_layers_within_budget(base, per_layer, budget, expected):
    peak_at, calls = linear_peaks(base, per_layer, 40)
    assert train_step.fit_checkpointed_layers(peak_at, 40, budget) == expected
    assert len(set(calls)) <= 8


def test_fit_corrects_a_wrong_linear_prediction():
    """Memory that grows faster after the first layers: the prediction overshoots and is walked back."""
    def peak_at(count: int) -> float:
        off = 40 - count
        return 10.0 + off + (0.5 * (off - 2) ** 2 if off > 2 else 0.0)

    count = train_step.fit_checkpointed_layers(peak_at, 40, 16.0)
    assert peak_at(count) <= 16.0 < peak_at(count - 1)


def test_executed_flops_counts_recomputation_s2_and_the_review_head():
    from transformers import LlamaConfig

    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=100)
    kw = dict(review_tokens=[10], lora_r=0)
    full = train_step.executed_flops(config, [[512]], [512], group_size=None, checkpointed=2, **kw)
    none = train_step.executed_flops(config, [[512]], [512], group_size=None, checkpointed=0, **kw)
    s2 = train_step.executed_flops(config, [[512]], [512], group_size=128, checkpointed=2, **kw)
    base = 4 * 64 * 64 + 3 * 64 * 128
    # recomputation adds one forward of the linear layers (2 P per token) and of the attention, per layer
    assert full - none == pytest.approx(2 * (2 * base * 512 + 64 * 2 * 512 ** 2))
    assert s2 < full  # S2 groups compute less attention than full causal
    assert train_step.executed_flops(config, [[512]], [512], group_size=None, checkpointed=2, review_tokens=None,
                                     lora_r=0) > full  # the baseline's LM head runs on every position
