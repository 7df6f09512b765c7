"""A JSONL output written one record a line as each is done, so that an interrupted run resumes where it stopped.
One piece for every such output (collect's paper file, generate's reviews file), so they resume alike:

- the ids already in the file are known (``done``) and skipped by the command; ids written twice are listed in
  ``duplicates`` (``file:line``), never silently merged;
- a last line cut by a crash is removed (``repaired``) and made again; a line that is not JSON with an id stops the
  run naming ``file:line`` and the fix;
- each line is flushed and fsynced before the next record starts;
- one process at a time: ``<file>.lock`` beside it (released by the system if the process dies), removed when the
  run ends, finished or not, and when a resume is refused (lightning_review.artifacts.lock_file);
- ``overwrite`` never truncates or deletes the existing file: the new records go to ``<file>.partial``, which
  ``finish()`` renames over the file once the run has written them all; an interrupted overwrite keeps the old file
  whole, and running it again continues the partial file (``resumed_partial``).

Not ``safe_paths.atomic_writer``: that discards its temporary file when the block fails, where a resumable output
must keep every line written so far.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import UserError, json_error
from .lock_file import LockRemovedTooOften, RemovedOnRelease


def _beside(path: str | Path, suffix: str) -> Path:
    """A file next to an output's real path (two names of one file share it)."""
    real = Path(path).expanduser().resolve()
    return real.with_name(real.name + suffix)


def lock_path(path: str | Path) -> Path:
    """The lock beside an output."""
    return _beside(path, ".lock")


def partial_path(path: str | Path) -> Path:
    """Where ``overwrite`` writes until the new file is complete."""
    return _beside(path, ".partial")


def output_files(path: str | Path) -> tuple[Path, Path, Path]:
    """Every file a run writes for ``path``: the output, its lock and its partial file; a command checks each
    against its inputs (``safe_paths.refuse_output_over_input``) before anything is written."""
    return Path(path), lock_path(path), partial_path(path)


class ResumableJsonl:
    """Locks ``path`` and reads what it already holds; use as a context manager (the lock is held until it exits),
    ``write()`` each record (a dict with an ``id``) and call ``finish()`` when every record is written.

    Subclasses name their command and records, for the messages, and may check each line read back
    (``check_line``)."""

    COMMAND = "this command"  # who writes the file: "another <COMMAND> process"
    FLAG = "--output_file"  # the option that names the file
    FILE_KIND = "JSONL file"  # "it is not a <FILE_KIND> written by <COMMAND>"
    RECORD = "record"  # one line: "not a <RECORD> with an id"
    TWICE = "write the same records twice"  # what two runs on one file would do

    def __init__(self, path: str | Path, overwrite: bool = False):
        self.target = Path(path)
        self.overwrite = overwrite
        self.done: set[str] = set()
        self.duplicates: list[str] = []  # "file:line" of each line whose id an earlier line has
        self.repaired = False
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._lock = RemovedOnRelease(lock_path(path))
        try:
            taken = self._lock.acquire()
        except LockRemovedTooOften as exc:
            raise UserError(str(exc)) from None
        if not taken:
            raise UserError(f"{self.target} is being written by another {self.COMMAND} process (it holds "
                            f"{lock_path(path)}); wait until it ends, or give this run another {self.FLAG} "
                            f"(two runs on one file would {self.TWICE})")
        try:
            self.path = partial_path(path) if overwrite else self.target
            self.resumed_partial = overwrite and self.path.exists()
            if self.path.exists():
                self._read_existing()
        except BaseException:
            self._lock.release()
            raise

    def __enter__(self) -> "ResumableJsonl":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the lock and remove its file (a ``.partial`` of an unfinished overwrite stays, to resume)."""
        self._lock.release()

    def finish(self) -> None:
        """Every record is written: an overwrite's new file replaces the old one."""
        if self.overwrite:
            if not self.path.exists():
                self.path.touch()
            os.replace(self.path, self.target.expanduser().resolve())
            self.path = self.target

    def partial_note(self) -> str | None:
        """What a run tells about an overwrite's partial file: that it continued one, or that it leaves one aside
        (resuming the file itself); None when there is none."""
        if self.resumed_partial:
            return (f"continued {self.path}, what an interrupted --overwrite run wrote ({len(self.done)} "
                    f"{self.RECORD}s); it replaces {self.target} once every {self.RECORD} is written")
        if not self.overwrite and partial_path(self.target).exists():
            return (f"{partial_path(self.target)} holds an unfinished --overwrite run; this run resumes "
                    f"{self.target} instead (pass --overwrite true to continue that one)")
        return None

    def write(self, record: dict) -> None:
        """Append one record and make it durable before the next one starts."""
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done.add(str(record["id"]))

    def check_line(self, obj: dict, where: str, start_over: str) -> None:
        """Raise UserError when a line read back cannot be resumed (``where``: file:line; ``start_over``: the
        fix to name). Every line with an id can, unless a subclass says otherwise."""

    def _read_existing(self) -> None:
        data = self.path.read_bytes()
        complete = data[:data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # killed in the middle of a write: that record is made again
            with self.path.open("r+b") as f:
                f.truncate(len(complete))
            self.repaired = True
        if self.overwrite:
            start_over = (f"delete {self.path} (what an interrupted --overwrite run wrote) to start over, or use "
                          f"another {self.FLAG}")
        else:
            start_over = f"use another {self.FLAG}, or pass --overwrite true to start over"
        not_ours = f"it is not a {self.FILE_KIND} written by {self.COMMAND}: {start_over}"
        for number, raw in enumerate(complete.split(b"\n"), 1):
            where = f"{self.path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise UserError(f"{where}: not UTF-8 text; {not_ours}") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{where}: not JSON ({json_error(exc)}); {not_ours}") from None
            if not isinstance(obj, dict) or "id" not in obj:
                raise UserError(f"{where}: not a {self.RECORD} with an id; {not_ours}")
            self.check_line(obj, where, start_over)
            record_id = str(obj["id"])
            if record_id in self.done:
                self.duplicates.append(where)
            self.done.add(record_id)
