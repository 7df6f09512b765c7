"""train_step.py's ``set.<module>.<NAME>=value`` variant settings: a library constant set for one variant only."""

import pytest

import train_step
from lightning_review.model import fused_lora


def test_a_constant_is_set_for_the_block_and_restored_after():
    _, settings, _, bench = train_step.parse_variant("ours:width=fit;set.fused_lora.ACCUMULATE_IN_BASE=false")
    assert settings == {} and bench["library"] == {("fused_lora", "ACCUMULATE_IN_BASE"): False}
    before = fused_lora.ACCUMULATE_IN_BASE
    with train_step.library_constants(bench["library"]):
        assert fused_lora.ACCUMULATE_IN_BASE is False
    assert fused_lora.ACCUMULATE_IN_BASE is before


def test_a_constant_is_restored_when_the_variant_fails():
    before = fused_lora.ACCUMULATE_IN_BASE
    with pytest.raises(RuntimeError):
        with train_step.library_constants({("fused_lora", "ACCUMULATE_IN_BASE"): not before}):
            raise RuntimeError("out of memory")
    assert fused_lora.ACCUMULATE_IN_BASE is before


@pytest.mark.parametrize("spec", ["ours:set.fused_lora=1", "ours:set.fused_lora.accumulate=1"])
def test_a_setting_that_names_no_constant_is_refused(spec):
    with pytest.raises(SystemExit, match="set.<module>.<CONSTANT>"):
        train_step.parse_variant(spec)


def test_an_unknown_constant_is_named():
    with pytest.raises(SystemExit, match="has no NOPE"):
        with train_step.library_constants({("fused_lora", "NOPE"): 1}):
            pass
