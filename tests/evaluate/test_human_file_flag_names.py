"""evaluate's messages about its human file name evaluate's own flags (``--data_format``, ``--rejects_file``,
``--on_bad_record``), not fit's ``data.*`` settings nor a rename the flag makes unnecessary."""

import json

from tests.conftest import run_cli, write_jsonl

PAPER = {"id": "a", "paper": "We study graphs and molecules. " * 8, "review": "Clear writing, weak baselines here."}


def last_error(tmp_path, *flags) -> str:
    ours = write_jsonl(tmp_path / "ours.jsonl", [{"id": "a", "review": "A review."}])
    proc = run_cli("evaluate", f"--systems={json.dumps({'ours': str(ours)})}", f"--output_dir={tmp_path / 'out'}",
                   *flags, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "out").exists()
    return proc.stderr.strip().splitlines()[-1]


def test_json_lines_named_csv_names_the_data_format_flag(tmp_path):
    human = tmp_path / "human.csv"
    human.write_text(json.dumps(PAPER) + "\n")
    line = last_error(tmp_path, f"--human_file={human}")
    assert "--data_format auto reads a file named .csv as CSV" in line and "set --data_format jsonl" in line, line
    assert "data." not in line


def test_a_rejects_file_without_skip_names_evaluates_flags(tmp_path):
    human = write_jsonl(tmp_path / "human.jsonl", [PAPER])
    line = last_error(tmp_path, f"--human_file={human}", f"--rejects_file={tmp_path / 'rj.jsonl'}")
    assert line.startswith(f"error: --rejects_file={tmp_path / 'rj.jsonl'} lists the records --on_bad_record=skip "
                           "leaves out"), line
