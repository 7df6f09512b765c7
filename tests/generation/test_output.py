"""The reviews file: resume skips what is written, a line cut by a crash is generated again, settings must match."""

import json

import pytest

from lightning_review.generation.output import ReviewsFile

SETTINGS = {"backend": "local", "max_new_tokens": 8}


def test_resume_knows_the_written_ids_and_removes_a_cut_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    out = ReviewsFile(path, SETTINGS)
    out.write({"id": "a", "review": "x"})
    out.write({"id": "b", "review": "y"})
    with path.open("a") as f:
        f.write('{"id": "c", "rev')  # killed while writing c
    again = ReviewsFile(path, SETTINGS)
    assert again.done == {"a", "b"} and again.repaired
    again.write({"id": "c", "review": "z"})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b", "c"]


def test_other_settings_or_a_foreign_file_are_refused_with_the_line(tmp_path):
    path = tmp_path / "r.jsonl"
    ReviewsFile(path, SETTINGS).write({"id": "a", "review": "x"})
    with pytest.raises(ValueError, match=r"r.jsonl:1: written with other settings \(differs in max_new_tokens\)"):
        ReviewsFile(path, {**SETTINGS, "max_new_tokens": 9})
    assert ReviewsFile(path, {**SETTINGS, "max_new_tokens": 9}, overwrite=True).done == set()
    path.write_text("not json\n")
    with pytest.raises(ValueError, match="r.jsonl:1: not JSON"):
        ReviewsFile(path, SETTINGS)
