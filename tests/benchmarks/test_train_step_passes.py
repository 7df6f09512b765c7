"""train_step.py --passes: both variants run each job's rows again and time the last pass, the same rows that one
pass times, so that a mix row's first-seen shapes are not in the timing of one variant and not the other."""

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
    assert count == 2 * docs and untimed == docs + 1
    assert rows[:docs] == rows[docs:]  # the second pass runs the first one's documents, in order
    (ours_call,) = seen["ours"]
    count, untimed, rows = ours_call
    assert count % 2 == 0 and untimed == count // 2 + 1 and rows[:count // 2] == rows[count // 2:]
    entries = result["mix_96"]
    assert entries["baseline"]["steps"] == docs - 1 and entries["baseline"]["passes"] == 2
    assert entries["ours:width=fit"]["steps"] == count // 2 - 1


def test_passes_below_one_are_refused(capsys):
    with pytest.raises(SystemExit):
        train_step.main(["--shape", "tiny", "--device", "cpu", "--passes", "0"])
    assert "--passes 0: at least 1" in capsys.readouterr().err
