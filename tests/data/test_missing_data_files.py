"""A data file that does not exist, given to fit / validate / test / predict: one line naming the setting
(data.train_file, data.val_file, data.predict_file), the path and the fix, exit status 1, no traceback; found when the
DataModule is built, before the Trainer and the model. A file that goes missing later (or a PeerRead directory
without its reviews) is still one line: the readers' error is a UserError as well as a FileNotFoundError."""

import re

import pytest

from lightning_review.cli import main
from lightning_review.data.datamodule import ReviewDataModule
from lightning_review.data.readers import read_records
from lightning_review.data.records import read_papers
from lightning_review.errors import UserError
from lightning_review.training.module import LongQLoRAModule
from tests.conftest import ROOT, run_cli, write_jsonl

DEMO = str(ROOT / "configs" / "demo.yaml")
PAIRS = [{"paper": f"Paper {i} text.", "review": f"Review {i}: clear writing, weak baselines."} for i in range(3)]


@pytest.fixture
def no_model_load(monkeypatch):
    """The model must not be loaded (nor the Trainer run) before a missing data file is named."""
    def refuse(self):
        raise AssertionError("the model was loaded before the missing data file was named")

    monkeypatch.setattr(LongQLoRAModule, "configure_model", refuse)


@pytest.mark.parametrize("command, setting", [
    ("fit", "train_file"), ("fit", "val_file"), ("validate", "val_file"), ("test", "train_file"),
    ("predict", "predict_file"),
])
def test_a_missing_data_file_is_one_line_naming_the_setting_path_and_fix(tmp_path, monkeypatch, no_model_load,
                                                                         command, setting):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "data" / "pairs.jsonl"
    with pytest.raises(SystemExit) as exc:
        main([command, "-c", DEMO, f"--trainer.default_root_dir={tmp_path / 'runs'}", f"--data.{setting}",
              str(missing)])
    message = str(exc.value.code)
    assert message == (f"error: data.{setting}={missing}: no such file or directory; give the path of an existing "
                       f"data file (--data.{setting} on the command line, or data.{setting} in the config file)")
    assert not (tmp_path / "runs").exists()  # refused before the Trainer wrote anything


def test_every_missing_data_file_is_named_at_once(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    with pytest.raises(UserError) as exc:
        ReviewDataModule(train_file=str(a), val_file=str(b))
    assert str(exc.value) == (f"data.train_file={a}: no such file or directory; data.val_file={b}: no such file or "
                              "directory; give the path of an existing data file (--data.train_file, --data.val_file "
                              "on the command line, or data.train_file, data.val_file in the config file)")


def test_prepare_names_its_own_flags(tmp_path, monkeypatch, tiny_llama_dir):
    """prepare takes the training data as --data_file: the message names that flag, not fit's data.train_file."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "--data_file", "pairs.jsonl", "--val_file", "val.jsonl", "--tokenizer_dir",
              str(tiny_llama_dir), "--output_dir", "out"])
    assert str(exc.value.code) == ("error: --data_file=pairs.jsonl: no such file or directory; --val_file=val.jsonl: "
                                   "no such file or directory; give the path of an existing data file")


def test_a_directory_as_predict_file_is_refused_at_construction(tmp_path):
    """Papers to review are read from a JSONL file; a directory (train_file's PeerRead form) is not one."""
    with pytest.raises(UserError, match=rf"^data\.predict_file={re.escape(str(tmp_path))}: a directory, not a JSONL "
                                        r"file of papers"):
        ReviewDataModule(predict_file=str(tmp_path))


def test_existing_files_and_built_in_data_pass_the_check(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", PAIRS)
    val = write_jsonl(tmp_path / "v.jsonl", PAIRS)
    ReviewDataModule(train_file=str(data), val_file=str(val), predict_file=str(data))
    ReviewDataModule()  # builtin:demo-reviews, made on first use
    (tmp_path / "peerread").mkdir()
    ReviewDataModule(train_file=str(tmp_path / "peerread"))  # a PeerRead split directory, read later


def test_the_readers_missing_file_errors_are_user_errors_too(tmp_path):
    """Named by the CLI as one line (a UserError), and still FileNotFoundErrors for callers that catch those."""
    for read in (lambda p: read_records(p), lambda p: list(read_papers(p))):
        with pytest.raises(UserError, match="absent.jsonl") as exc:
            read(tmp_path / "absent.jsonl")
        assert isinstance(exc.value, FileNotFoundError)
    with pytest.raises(UserError, match="a PeerRead directory holds reviews/") as exc:
        read_records(tmp_path)
    assert isinstance(exc.value, FileNotFoundError)


def test_fit_with_a_missing_train_file_prints_one_line_and_exits_1(tmp_path):
    """As the user sees it: stderr is the one line, no traceback."""
    proc = run_cli("fit", "-c", DEMO, "--data.train_file", "/nonexistent/pairs.jsonl", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: data.train_file=/nonexistent/pairs.jsonl: no such file or directory; give the path of an existing "
        "data file (--data.train_file on the command line, or data.train_file in the config file)")
