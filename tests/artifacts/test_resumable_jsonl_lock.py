"""The lock every resumable JSONL output takes (``<file>.lock``): it still keeps a second writer out, and no run
leaves its file behind, whichever command writes (collect's PaperWriter, generate's ReviewsFile, the shared class
itself) and however the run ends."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lightning_review.artifacts import lock_file
from lightning_review.artifacts.resumable_jsonl import ResumableJsonl, lock_path
from lightning_review.collect.output import PaperWriter
from lightning_review.errors import UserError
from lightning_review.generation.output import ReviewsFile

SETTINGS = {"backend": "local", "max_new_tokens": 8}
WRITERS = {"shared": lambda path, overwrite=False: ResumableJsonl(path, overwrite=overwrite),
           "collect": lambda path, overwrite=False: PaperWriter(path, overwrite=overwrite),
           "generate": lambda path, overwrite=False: ReviewsFile(path, SETTINGS, overwrite=overwrite)}


def names(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("command", WRITERS)
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_finished_run_leaves_no_lock_file(command, overwrite, tmp_path):
    path = tmp_path / "out.jsonl"
    with WRITERS[command](path, overwrite=overwrite) as out:
        assert lock_path(path).exists()  # held while the run writes
        out.write({"id": "a", "review": "ok"})
        out.finish()
    assert names(tmp_path) == ["out.jsonl"]


@pytest.mark.parametrize("command", WRITERS)
def test_an_interrupted_run_leaves_no_lock_file_and_resumes(command, tmp_path):
    path = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        with WRITERS[command](path) as out:
            out.write({"id": "a", "review": "ok"})
            raise KeyboardInterrupt
    assert names(tmp_path) == ["out.jsonl"]
    with pytest.raises(RuntimeError):
        with WRITERS[command](path, overwrite=True) as out:  # an overwrite that fails keeps its partial file only
            out.write({"id": "b", "review": "new"})
            raise RuntimeError("the server went away")
    assert names(tmp_path) == ["out.jsonl", "out.jsonl.partial"]
    with WRITERS[command](path) as out:
        assert out.done == {"a"}


@pytest.mark.parametrize("command", WRITERS)
def test_a_refused_resume_leaves_no_lock_file(command, tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("not json\n")
    with pytest.raises(UserError, match=r"out.jsonl:1: not JSON"):
        WRITERS[command](path)
    assert names(tmp_path) == ["out.jsonl"]
    path.write_text(json.dumps({"id": "a", "settings": SETTINGS}) + "\n")
    with WRITERS[command](path) as out:  # the refusal let go of the lock
        assert out.done == {"a"}


@pytest.mark.parametrize("command", WRITERS)
def test_a_second_writer_is_still_refused_and_takes_nothing_away(command, tmp_path):
    path = tmp_path / "out.jsonl"
    with WRITERS[command](path) as first:
        with pytest.raises(UserError, match="is being written by another .* process"):
            WRITERS[command](path)
        assert lock_path(path).exists()  # the refused run did not remove the lock the first one holds
        first.write({"id": "a", "review": "ok"})
    assert not lock_path(path).exists()
    with WRITERS[command](path) as again:  # and the next run locks it anew
        assert again.done == {"a"} and lock_path(path).exists()


def test_a_writer_in_another_process_is_refused(tmp_path):
    path = tmp_path / "out.jsonl"
    script = ("import sys\nfrom lightning_review.collect.output import PaperWriter\n"
              "from lightning_review.errors import UserError\n"
              "try:\n    PaperWriter(sys.argv[1])\nexcept UserError as e:\n    print(e)\n    sys.exit(3)\n")
    with PaperWriter(path):
        done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True)
        assert done.returncode == 3 and "being written by another collect process" in done.stdout
        assert lock_path(path).exists()
    assert names(tmp_path) == []


def test_a_lock_file_removed_between_open_and_lock_is_taken_again(tmp_path, monkeypatch):
    """A run that ends removes the lock file: one that opened the old file just before must not count it held."""
    out = tmp_path / "r.jsonl"
    calls = []
    real = lock_file._holds_current

    def removed_once(lock, path):
        if not calls:  # the first lock taken: as if the finishing run had just removed its file
            calls.append(1)
            path.unlink()
        return real(lock, path)

    monkeypatch.setattr(lock_file, "_holds_current", removed_once)
    with ReviewsFile(out, {"backend": "openai"}) as f:
        assert real(f._lock._lock, lock_path(out))  # holds the file now at the path
    assert not lock_path(out).exists()


def test_a_refusal_after_the_file_was_replaced_is_tried_again(tmp_path, monkeypatch):
    """A filelock that finds its inode unlinked reports a timeout: that is a run ending, not one writing."""
    path = tmp_path / "out.jsonl"
    real_acquire = lock_file.FileLock.acquire
    calls = []

    def replaced_once(self, *args, **kwargs):
        if not calls:
            calls.append(1)
            lock_path(path).touch()  # a run made the file, then ended and removed it while we tried
            lock_path(path).unlink()
            raise lock_file.Timeout(str(lock_path(path)))
        return real_acquire(self, *args, **kwargs)

    monkeypatch.setattr(lock_file.FileLock, "acquire", replaced_once)
    with PaperWriter(path) as out:
        assert out._lock.is_locked
    assert calls and names(tmp_path) == []
