"""Messages about bad data say the right thing: json's place once ("at column 41", not "at at column 41"), what a
line of that file needs, and the flag that names a column."""

import csv
import json

import pytest

from lightning_review.artifacts.checkpoint_files import CheckpointError, read_json_object
from lightning_review.cli import main
from lightning_review.data.readers import READ_SETTINGS, read_records
from lightning_review.data.records import RecordError, read_papers
from tests.conftest import write_jsonl

PAPER, REVIEW = "A paper about graphs.", "A review long enough to be kept by the reader."


def test_invalid_json_says_at_once(tmp_path):
    line = '{"paper": "a\x01b", "review": "r"}'  # a raw control character in a string: json says "...character at"
    path = write_jsonl(tmp_path / "d.jsonl", [line])
    with pytest.raises(RecordError, match=r"d\.jsonl:1: not valid JSON \(Invalid control character at column 13\)"):
        read_records(path)
    array = tmp_path / "d.json"
    array.write_text(f"[{line}]")
    with pytest.raises(RecordError, match=r"d\.json:1: not valid JSON \(Invalid control character at column 14\)"):
        read_records(array)
    config = tmp_path / "config.json"
    config.write_text(line)
    with pytest.raises(CheckpointError, match=r"not JSON: Invalid control character at line 1, column 13\)"):
        read_json_object(config, "config.json", "hint")


def test_a_papers_file_asks_for_a_paper_and_an_id_not_a_review(tmp_path):
    path = write_jsonl(tmp_path / "papers.jsonl", [{"id": "p1", "text": PAPER}])
    with pytest.raises(RecordError) as caught:
        list(read_papers(path))
    assert str(caught.value) == ("%s:1: missing field 'paper' (each line needs {\"id\": \"...\", \"paper\": \"...\"}); "
                                 "add it or remove the line" % path)


def test_a_missing_column_names_the_column_mapping_setting(tmp_path, tiny_llama_dir):
    path = tmp_path / "data.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["body", "critique"])
        writer.writeheader()
        writer.writerow({"body": PAPER, "critique": REVIEW})
    with pytest.raises(RecordError, match=r"data\.csv:2: no column 'paper' for 'paper'; name your column with "
                                          r"data\.column_mapping \{\"paper\": \"<your column>\"\}; the file has "
                                          r"columns that are not read: 'body', 'critique' \(misspelt or renamed\?\)$"):
        read_records(path, settings=READ_SETTINGS)  # fit's
    with pytest.raises(RecordError, match=r"data\.csv:2: no column 'paper' for 'paper'; rename the column that holds "
                                          r"the paper to 'paper'; the file has columns"):
        read_records(path)  # a command without a column mapping (evaluate, openai export)
    with pytest.raises(SystemExit) as caught:  # prepare's flag is --column_mapping
        main(["prepare", f"--data_file={path}", f"--tokenizer_dir={tiny_llama_dir}", f"--output_dir={tmp_path / 'o'}",
              f"--column_mapping={json.dumps({'review': 'critique'})}"])
    assert str(caught.value).endswith('name your column with --column_mapping {"paper": "<your column>"}; the file '
                                      "has columns that are not read: 'body' (misspelt or renamed?)")
