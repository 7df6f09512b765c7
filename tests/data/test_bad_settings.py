"""ReviewDataModule's settings are checked when it is built, before any file is read: each bad one named with the
values it may take (as the module's are), a rejects file without the skip policy that writes it, and a column mapping
for data whose fields it cannot name."""

import re

import pytest

from lightning_review.cli import main
from lightning_review.data.datamodule import ReviewDataModule
from lightning_review.data.readers import read_records
from lightning_review.errors import UserError
from tests.conftest import ROOT, write_jsonl


@pytest.mark.parametrize("setting, value, message", [
    ("batch_size", 0, "data.batch_size must be > 0"),
    ("batch_size", -2, "data.batch_size must be > 0"),
    ("num_workers", -1, "data.num_workers must be >= 0 (0: load in the main process)"),
    ("pad_to_multiple_of", 0, "data.pad_to_multiple_of must be > 0 (1: no rounding)"),
    ("min_review_chars", -1, "data.min_review_chars must be >= 0"),
    ("max_seq_length", 63, "data.max_seq_length must be at least 64"),
    ("val_fraction", 1.0, "data.val_fraction must be in [0, 1)"),
    ("val_fraction", -0.1, "data.val_fraction must be in [0, 1)"),
])
def test_out_of_range_settings_are_refused_at_construction(setting, value, message):
    with pytest.raises(UserError, match=re.escape(f"{message}, got {value!r}")):
        ReviewDataModule(train_file="never-read.jsonl", **{setting: value})


def test_a_max_seq_length_beyond_ropes_float32_positions_is_refused_naming_the_limit():
    """--max_seq_length 99999999999999 was accepted (prepare packed every example into one row of that width). The
    real ceiling: RoPE takes positions as float32, exact whole numbers only up to 2**24."""
    for length in (2**24 + 1, 99999999999999):
        expected = (f"data.max_seq_length must be at most 16,777,216 (2**24) tokens a row, got {length}: the model's "
                    f"RoPE takes positions as float32")
        with pytest.raises(UserError, match=re.escape(expected)):
            ReviewDataModule(train_file="never-read.jsonl", max_seq_length=length)
    for length in (32768, 65536, 262144, 2**24):  # long-context rows (benchmarks went to 256K) and the limit itself
        assert ReviewDataModule(max_seq_length=length).hparams.max_seq_length == length


def test_every_bad_setting_is_named_at_once():
    with pytest.raises(UserError, match=r"data.batch_size must be > 0, got 0; data.num_workers must be >= 0"):
        ReviewDataModule(batch_size=0, num_workers=-1)


def test_fit_with_batch_size_0_is_one_line_naming_the_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"^error: data.batch_size must be > 0, got 0$"):
        main(["fit", "-c", str(ROOT / "configs" / "demo.yaml"), "--data.batch_size", "0"])


def test_a_rejects_file_without_the_skip_policy_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"data.rejects_file=.*rj\.jsonl lists the records data.on_bad_record=skip "
                                        r"leaves out, but data.on_bad_record is strict .*set data.on_bad_record "
                                        r"skip, or leave data.rejects_file out"):
        ReviewDataModule(rejects_file=str(tmp_path / "rj.jsonl"))
    ReviewDataModule(rejects_file=str(tmp_path / "rj.jsonl"), on_bad_record="skip")


def test_a_rejects_file_that_is_a_directory_is_refused_before_the_data_is_read(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(UserError, match=r"^data\.rejects_file=.*out is a directory, but a file is written there; "
                                        r"give data\.rejects_file a file path"):
        ReviewDataModule(train_file="never-read.jsonl", rejects_file=str(tmp_path / "out"), on_bad_record="skip")
    (tmp_path / "v.jsonl.val").mkdir()
    with pytest.raises(UserError, match=r"^data\.rejects_file \(\+ '\.val'\)=.*v\.jsonl\.val is a directory"):
        ReviewDataModule(train_file="never-read.jsonl", val_file="never.jsonl", on_bad_record="skip",
                         rejects_file=str(tmp_path / "v.jsonl"))


def test_a_column_mapping_is_checked_at_construction_and_refused_where_no_column_is_read(tmp_path):
    with pytest.raises(UserError, match=r"data.column_mapping keys must be among .* got \['body'\]"):
        ReviewDataModule(train_file="never-read.jsonl", column_mapping={"body": "paper"})
    path = write_jsonl(tmp_path / "d.jsonl", [{"body": "A paper.", "review": "A review long enough."}])
    with pytest.raises(UserError, match=r"d\.jsonl: data.column_mapping names the columns of JSON and CSV data, but "
                                        r"this is read as jsonl data.*leave data.column_mapping out"):
        read_records(path, mapping={"paper": "body"})
