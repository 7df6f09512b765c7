"""train_step.py's ``baseline:again``: the baseline timed twice in one process, each ratio given against both."""

import pytest
import train_step


def test_baseline_again_parses_as_the_baseline_and_takes_no_other_settings():
    assert train_step.parse_variant("baseline:again") == ("baseline", {}, None, {"again": True})
    assert train_step.parse_variant("baseline:again;rows=8192") == ("baseline", {}, {8192}, {"again": True})
    with pytest.raises(SystemExit, match="the baseline takes no settings"):
        train_step.parse_variant("baseline:again=2")


def test_the_summary_gives_the_ratio_against_both_baseline_runs():
    result = {"args": {"memory_slack": 0.05}, "mix_16384": {
        "baseline": {"tokens_per_s": 4000.0, "peak_gb": 20.0},
        "ours:width=fit": {"tokens_per_s": 6000.0, "peak_gb": 20.5},
        "baseline:again": {"tokens_per_s": 3750.0, "peak_gb": 20.0}}}
    summary = train_step.equal_memory_summary(result)["mix_16384"]
    assert summary["best"] == "ours:width=fit" and summary["ratio"] == 1.5
    assert summary["baseline_again_tokens_per_s"] == 3750.0 and summary["ratio_against_baseline_again"] == 1.6
