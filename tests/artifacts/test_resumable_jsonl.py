"""The resumable JSONL output both commands write through (collect's PaperWriter, generate's ReviewsFile): each
behaviour a user relies on, checked on both, so that they cannot drift apart again."""

from __future__ import annotations

import json

import pytest

from lightning_review.artifacts.resumable_jsonl import lock_path, output_files, partial_path
from lightning_review.collect.output import PaperWriter
from lightning_review.errors import UserError
from lightning_review.generation.output import ReviewsFile

SETTINGS = {"backend": "local", "max_new_tokens": 8}
WRITERS = {"collect": lambda path, overwrite=False: PaperWriter(path, overwrite=overwrite),
           "generate": lambda path, overwrite=False: ReviewsFile(path, SETTINGS, overwrite=overwrite)}


def ids(path):
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("command", WRITERS)
def test_an_interrupted_overwrite_keeps_the_old_file_until_the_new_one_is_complete(command, tmp_path):
    open_output = WRITERS[command]
    path = tmp_path / "out.jsonl"
    with open_output(path) as out:
        out.write({"id": "old", "review": "from an earlier run"})
        out.finish()
    old = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with open_output(path, overwrite=True) as out:
            out.write({"id": "a", "review": "new"})
            raise KeyboardInterrupt  # the user stops the run before every record is written
    assert path.read_bytes() == old
    with open_output(path) as out:  # a run without --overwrite resumes the file and says the partial one waits
        assert str(partial_path(path)) in out.partial_note() and "--overwrite true" in out.partial_note()
    with open_output(path, overwrite=True) as out:  # the same command again continues the new file
        assert out.resumed_partial and out.done == {"a"}
        assert out.partial_note().startswith(f"continued {partial_path(path)}")
        out.write({"id": "b", "review": "new"})
        assert path.read_bytes() == old
        out.finish()
    assert ids(path) == ["a", "b"] and not partial_path(path).exists()


@pytest.mark.parametrize("command", WRITERS)
def test_resume_drops_a_cut_last_line_and_lists_ids_written_twice(command, tmp_path):
    open_output = WRITERS[command]
    path = tmp_path / "out.jsonl"
    with open_output(path) as out:
        for record_id in ["a", "b", "a"]:
            out.write({"id": record_id, "review": "x"})
    with path.open("a") as f:
        f.write('{"id": "c", "rev')  # killed while writing c
    with open_output(path) as again:
        assert again.done == {"a", "b"} and again.repaired and again.duplicates == [f"{path}:3"]
        again.write({"id": "c", "review": "z"})
    assert ids(path) == ["a", "b", "a", "c"]


@pytest.mark.parametrize("command", WRITERS)
def test_a_second_run_on_the_file_is_refused_naming_the_command_and_a_foreign_line_its_place(command, tmp_path):
    open_output = WRITERS[command]
    path = tmp_path / "out.jsonl"
    with open_output(path) as first:
        with pytest.raises(UserError, match=f"out.jsonl is being written by another {command} process"):
            open_output(tmp_path / "." / "out.jsonl")  # another name of the same file
        first.write({"id": "a", "review": "x"})
    with path.open("a") as f:
        f.write("[1, 2]\n")  # a line no run of the command wrote
    with pytest.raises(UserError, match=f"out.jsonl:2: not a (paper|review) with an id; it is not a .* written by "
                                        f"{command}: use another -*output_file, or pass --overwrite true"):
        open_output(path)
    with open_output(path, overwrite=True):  # the refusal let go of the lock
        pass


def test_every_file_a_run_writes_is_listed_for_the_output_over_input_check(tmp_path):
    path = tmp_path / "out.jsonl"
    assert output_files(path) == (path, lock_path(path), partial_path(path))
    assert [p.name for p in output_files(path)] == ["out.jsonl", "out.jsonl.lock", "out.jsonl.partial"]
