"""fit names its rejects file as it names every other data setting, ``data.rejects_file``: a rejects file that is
one of the data files (or whose ``.val`` list is) is refused through the real CLI with the setting so spelt, before
anything is read or written."""

import pytest

from tests.conftest import ROOT, run_cli, write_jsonl

DEMO = str(ROOT / "configs" / "demo.yaml")
PAIRS = [{"paper": f"Paper {i} text.", "review": f"Review {i}: clear writing, weak baselines."} for i in range(3)]


@pytest.mark.parametrize("val", [False, True], ids=["train_file", "val_file"])
def test_fit_names_data_rejects_file_when_it_is_a_data_file(tmp_path, val):
    train = write_jsonl(tmp_path / "train.jsonl", PAIRS)
    valid = write_jsonl(tmp_path / "rejects.jsonl.val", PAIRS)  # the .val list of rejects.jsonl
    rejects, listed, setting = ((tmp_path / "rejects.jsonl", valid, "data.rejects_file (+ '.val')") if val
                                else (train, train, "data.rejects_file"))
    before = {p: p.read_bytes() for p in (train, valid)}
    proc = run_cli("fit", "-c", DEMO, f"--trainer.default_root_dir={tmp_path / 'runs'}", "--data.train_file",
                   str(train), *(["--data.val_file", str(valid)] if val else []), "--data.on_bad_record", "skip",
                   "--data.rejects_file", str(rejects), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {setting}={listed} is the input file {listed}: writing it would destroy the input; give {setting} "
        "another path")
    assert {p: p.read_bytes() for p in (train, valid)} == before
    assert not (tmp_path / "runs").exists() and not (tmp_path / "rejects.jsonl").exists()
