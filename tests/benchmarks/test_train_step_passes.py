"""train_step.py --passes: both variants run each job's rows again and time the last pass, the same rows that one
pass times, so that a mix row's first-seen shapes are not in the timing of one variant and not the other; the first
pass's figures are kept beside it (what a run meeting each shape once pays), and the summary gives both ratios."""

import json

import pytest

import train_step


def test_two_passes_time_the_second_pass_of_the_same_rows(tiny_llama_dir, tmp_path, monkeypatch):
    seen = {}

    def recording(name, real):
        def run(model, rows, *args, **kwargs):
            untimed = args[2] if name == "ours" else args[1]  # (row_length, device, warmup) / (device, warmup)
            seen.setdefault(name, []).append((len(rows), untimed, rows))
            return real(model, rows, *args, **kwargs)
        return run

    monkeypatch.setattr(train_step, "baseline_steps", recording("baseline", train_step.baseline_steps))
    monkeypatch.setattr(train_step, "our_steps", recording("ours", train_step.our_steps))
    out = tmp_path / "passes.json"
    train_step.main(["--shape", "tiny", "--device", "cpu", "--variants", "baseline,ours:width=fit", "--no-quantize",
                     "--seqs", "", "--mix", "3", "--mix_row", "96", "--steps", "2", "--warmup", "1",
                     "--passes", "2", "--clock_interval_ms", "0", "--out", str(out)])
    result = json.loads(out.read_text())
    docs = len(result["mix_lengths"])  # the warm-up document and the three timed ones
    (baseline_call,) = seen["baseline"]
    count, untimed, rows = baseline_call
    assert count == 2 * docs and untimed == 1  # only the first pass's warm-up document is not timed
    assert rows[:docs] == rows[docs:]  # the second pass runs the first one's documents, in order
    (ours_call,) = seen["ours"]
    count, untimed, rows = ours_call
    assert count % 2 == 0 and untimed == 1 and rows[:count // 2] == rows[count // 2:]
    entries = result["mix_96"]
    for name, timed in (("baseline", docs - 1), ("ours:width=fit", count // 2 - 1)):
        entry = entries[name]
        assert entry["steps"] == timed and entry["passes"] == 2
        assert len(entry["step_s"]) == len(entry["first_pass"]["step_s"]) == timed
        assert entry["first_pass"]["tokens_per_s"] > 0


def test_the_summary_gives_the_first_passes_ratio_beside_the_last_passes():
    row = {"baseline": {"tokens_per_s": 100.0, "peak_gb": 10.0, "first_pass": {"tokens_per_s": 80.0}},
           "ours:width=fit": {"tokens_per_s": 150.0, "peak_gb": 10.2, "first_pass": {"tokens_per_s": 148.0}}}
    summary = train_step.equal_memory_summary({"args": {"memory_slack": 0.05}, "mix_16384": row})["mix_16384"]
    assert summary["ratio"] == 1.5  # the last passes: the figure quoted
    assert summary["first_pass_ratio"] == 1.85
    assert (summary["first_pass_tokens_per_s"], summary["first_pass_baseline_tokens_per_s"]) == (148.0, 80.0)
    one_pass = {name: {k: v for k, v in e.items() if k != "first_pass"} for name, e in row.items()}
    assert "first_pass_ratio" not in train_step.equal_memory_summary({"mix_16384": one_pass})["mix_16384"]


def test_passes_below_one_are_refused(capsys):
    with pytest.raises(SystemExit):
        train_step.main(["--shape", "tiny", "--device", "cpu", "--passes", "0"])
    assert "--passes 0: at least 1" in capsys.readouterr().err
