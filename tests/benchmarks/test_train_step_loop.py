"""benchmarks/train_step.py's step loop (run_variant, kind baseline: the loop unsloth_step.py's model is timed with
too), run whole on the CPU: --shape tiny --device cpu, the baseline alone."""

import pytest
import torch

train_step = pytest.importorskip("train_step")


def test_the_baseline_loop_times_the_documented_protocol(tiny_train_step_run):
    run = tiny_train_step_run
    probe, result = run.probe, run.result
    assert [label for label, _, _ in run.jobs] == ["seq_48", "mix_64"]
    assert probe.calls == probe.expected_calls(run.jobs, 0.1)  # one document a step, bf16 autocast
    assert probe.optimizers == len(run.jobs)  # torch AdamW, a fresh one per job
    assert probe.optimizer_steps == len(probe.calls)  # an optimizer step per document
    for label, lengths, _ in run.jobs:
        entry = result[label]["baseline"]
        probe.assert_timed_as_documented(entry, lengths)
        assert entry["peak_gb"] is None and entry["peak_host_pinned_gb"] is None  # no CUDA peak on the CPU
    assert set(result["load_s"]) == {"baseline"} and "errors" not in result


def test_run_variant_refuses_an_unknown_kind(tmp_path):
    args = type("Args", (), {"device": "cpu", "quantize": False})()
    with pytest.raises(ValueError, match="kind 'unsloth'"):
        train_step.run_variant("unsloth", lambda *a: torch.nn.Linear(1, 1), tmp_path, 8, [], args, None, None, {},
                               kind="unsloth")
