"""The readers' and the DataModule's messages name each setting as the command the user ran spells it: fit's
``data.<name>``, prepare's ``--<name>``, and for a command without the setting (evaluate has no minimum review length,
openai export no data format) the fix in the file. They said ``min_review_chars=20`` to every command, and
``data.column_mapping``, ``data.val_fraction`` in prepare's warnings and ``data.data_format`` to openai export. Each
test runs the real command."""

import csv
import json

from tests.conftest import run_cli, write_jsonl
from tests.test_prepare_flag_names import DEMO, last_line, prepare_cli
PAPER = "We study graphs and molecules with a new message passing scheme. " * 8
REVIEW = "Clear writing, weak baselines, and the ablations are missing."


def short_review(tmp_path):
    """Two papers, the second's review of 9 characters, under the 20 a review needs (its line 2)."""
    return write_jsonl(tmp_path / "pairs.jsonl", [{"id": "p0", "paper": PAPER, "review": REVIEW},
                                                   {"id": "p1", "paper": PAPER + " Another.", "review": "Too short"}])


def test_prepare_names_its_minimum_review_length_flag(tmp_path, tiny_llama_dir):
    data = short_review(tmp_path)
    assert last_line(prepare_cli(tmp_path, tiny_llama_dir, f"--data_file={data}")) == (
        f"error: {data}:2: the review has 9 characters, fewer than --min_review_chars=20")


def test_fit_names_its_config_key(tmp_path):
    data = short_review(tmp_path)
    proc = run_cli("fit", "-c", DEMO, f"--trainer.default_root_dir={tmp_path / 'runs'}", f"--data.train_file={data}",
                   cwd=tmp_path)
    assert last_line(proc) == f"error: {data}:2: the review has 9 characters, fewer than data.min_review_chars=20"


def test_evaluate_has_no_minimum_review_length_to_name(tmp_path):
    human = short_review(tmp_path)
    ours = write_jsonl(tmp_path / "ours.jsonl", [{"id": "p0", "review": REVIEW}])
    proc = run_cli("evaluate", f"--human_file={human}", f"--systems={json.dumps({'ours': str(ours)})}",
                   '--judges=["embedding"]', f"--output_dir={tmp_path / 'ev'}", cwd=tmp_path)
    assert last_line(proc) == (f"error: {human}:2: the review has 9 characters, fewer than the 20 a review needs (in "
                               "the human file; fix it, or pass --on_bad_record skip to leave bad records out, "
                               "counted in the report)")


def test_openai_export_has_no_data_format_to_name(tmp_path):
    """export reads a file by its name: JSON lines in a file named .json are fixed by renaming it."""
    data = write_jsonl(tmp_path / "pairs.json", [{"id": f"p{i}", "paper": PAPER + str(i), "review": REVIEW}
                                                 for i in range(2)])
    proc = run_cli("openai", "export", f"--data_file={data}", f"--output_file={tmp_path / 'chat.jsonl'}", cwd=tmp_path)
    line = last_line(proc)
    assert line.endswith("looks like JSON lines (one object a line): rename the file to .jsonl"), line
    assert "data_format" not in line and not (tmp_path / "chat.jsonl").exists()


def test_prepare_warns_in_its_flags(tmp_path, tiny_llama_dir):
    """The DataModule's warnings (a column not read, no validation paper) named fit's data.column_mapping,
    data.val_fraction and data.val_file; prepare now has the DataModule spell them as its flags."""
    data = tmp_path / "pairs.csv"
    with data.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["paper", "review", "venu"])
        writer.writeheader()
        for i in range(2):  # reviews of one paper: nothing is left for validation
            writer.writerow({"paper": PAPER, "review": f"{REVIEW} ({i})", "venu": "X"})
    proc = prepare_cli(tmp_path, tiny_llama_dir, f"--data_file={data}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert any(line.endswith('name it with --column_mapping (e.g. {"review": "<your column>"})')
               for line in warnings), warnings
    assert any("--val_fraction 0.05 leaves no validation paper and no validation loss; give records of more papers, "
               "or a --val_file" in line for line in warnings), warnings
    assert "data." not in proc.stderr
