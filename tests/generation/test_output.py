"""The reviews file: resume skips what is written, a line cut by a crash is generated again, settings must match;
one writer at a time, ids written twice are counted, and an overwrite replaces the file only when complete."""

import json
import time

import pytest

from lightning_review.errors import UserError
from lightning_review.generation.output import ReviewsFile

SETTINGS = {"backend": "local", "max_new_tokens": 8}


def test_resume_knows_the_written_ids_and_removes_a_cut_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    with ReviewsFile(path, SETTINGS) as out:
        out.write({"id": "a", "review": "x"})
        out.write({"id": "b", "review": "y"})
    with path.open("a") as f:
        f.write('{"id": "c", "rev')  # killed while writing c
    with ReviewsFile(path, SETTINGS) as again:
        assert again.done == {"a", "b"} and again.repaired and again.duplicates == []
        again.write({"id": "c", "review": "z"})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b", "c"]


def test_other_settings_or_a_foreign_file_are_refused_with_the_line(tmp_path):
    path = tmp_path / "r.jsonl"
    with ReviewsFile(path, SETTINGS) as out:
        out.write({"id": "a", "review": "x"})
    with pytest.raises(UserError, match=r"r.jsonl:1: written with other settings \(differs in max_new_tokens\)"):
        ReviewsFile(path, {**SETTINGS, "max_new_tokens": 9})
    with ReviewsFile(path, {**SETTINGS, "max_new_tokens": 9}, overwrite=True) as fresh:  # the refusal let go the lock
        assert fresh.done == set()
    for content, problem in [(b"not json\n", "not JSON"), (b'{"review": "no id"}\n', "not a review with an id"),
                             (b'{"id": "a", "review": "\xff"}\n', "not UTF-8")]:
        path.write_bytes(content)
        with pytest.raises(UserError, match=f"r.jsonl:1: {problem}"):
            ReviewsFile(path, SETTINGS)


def test_a_second_writer_is_refused_at_once_naming_the_file(tmp_path):
    path = tmp_path / "r.jsonl"
    with ReviewsFile(path, SETTINGS) as first:
        first.write({"id": "a", "review": "x"})
        started = time.perf_counter()
        with pytest.raises(UserError, match=r"r.jsonl is being written by another generate process \(it holds "
                                             r".*r.jsonl.lock\)"):
            ReviewsFile(tmp_path / "." / "r.jsonl", SETTINGS)  # another name of the same file
        assert time.perf_counter() - started < 2  # an error, not a wait
    with ReviewsFile(path, SETTINGS) as again:  # released when the first run ends
        assert again.done == {"a"}


def test_ids_written_twice_are_counted_with_the_first_repeated_line(tmp_path):
    path = tmp_path / "r.jsonl"
    with ReviewsFile(path, SETTINGS) as out:
        for paper_id in ["a", "b", "a", "c", "b"]:
            out.write({"id": paper_id, "review": "x"})
    with ReviewsFile(path, SETTINGS) as again:
        assert again.done == {"a", "b", "c"}
        assert again.duplicates == [f"{path}:3", f"{path}:5"]


def test_overwrite_keeps_the_old_file_until_the_new_one_is_complete(tmp_path):
    path = tmp_path / "r.jsonl"
    with ReviewsFile(path, SETTINGS) as out:
        out.write({"id": "a", "review": "old"})
    old = path.read_bytes()
    new_settings = {**SETTINGS, "max_new_tokens": 9}
    with ReviewsFile(path, new_settings, overwrite=True) as out:  # interrupted after one review
        out.write({"id": "a", "review": "new"})
    assert path.read_bytes() == old
    with ReviewsFile(path, new_settings, overwrite=True) as out:  # run again: continues the partial file
        assert out.done == {"a"} and out.resumed_partial
        out.write({"id": "b", "review": "new"})
        assert path.read_bytes() == old
        out.finish()
    assert [(r["id"], r["review"], r["settings"]) for r in map(json.loads, path.read_text().splitlines())] == \
        [("a", "new", new_settings), ("b", "new", new_settings)]
    # no partial file, and no lock file once the run ended
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]


def test_each_line_carries_the_rating_its_review_states_or_null(tmp_path):
    path = tmp_path / "r.jsonl"
    with ReviewsFile(path, SETTINGS) as out:
        out.write({"id": "a", "review": "Sound method, thin evaluation.\n\nRating: 6"})
        out.write({"id": "b", "review": "Sound method; I would rate it 6 out of 10."})
    assert [json.loads(line)["rating"] for line in path.read_text().splitlines()] == [6.0, None]
