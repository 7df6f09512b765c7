"""evaluate --rejects_file under the strict policy lists nothing: refused, as fit and prepare refuse it, not
silently ignored."""

import pytest

from lightning_review.cli import main
from tests.conftest import write_jsonl
from tests.evaluate.test_input import paper, system_file


def test_evaluate_refuses_a_rejects_file_it_would_never_write(tmp_path):
    human = write_jsonl(tmp_path / "human.jsonl", [paper(0), paper(1)])
    ours = system_file(tmp_path / "ours.jsonl", ["p0", "p1"])
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", f"--human_file={human}", f'--systems={{"ours": "{ours}"}}', '--judges=["embedding"]',
              f"--output_dir={tmp_path / 'ev'}", f"--rejects_file={tmp_path / 'rejects.jsonl'}"])
    message = str(exc.value)
    assert "--rejects_file=" in message and "--on_bad_record is strict" in message
    assert "set --on_bad_record skip, or leave --rejects_file out" in message
    assert not (tmp_path / "ev" / "result.json").exists()
