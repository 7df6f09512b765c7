"""The reviews file: one JSON object a line, appended as each review is done, so an interrupted run resumes.

Each line: ``{"id", "system", "review", "rating", "prompt_tokens", "generated_tokens", "truncated",
"paper_tokens_removed", "finish_reason", "settings"}``. ``rating`` is the review's own rating line read back
(lightning_review.data.rating_line.parse_rating; null when the review states none in that form). The evaluator reads
``id`` and ``review`` (and the rating from the review by the same rule).

One process at a time: the file is locked (``<file>.lock`` beside it, released by the system if the process dies),
because two runs appending to one file would review every paper twice. ``overwrite`` never truncates the existing
file: the new reviews go to ``<file>.partial``, renamed over the file once the run has written them all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from filelock import FileLock, Timeout

from ..data.rating_line import parse_rating
from ..errors import UserError


def _beside(path: str | Path, suffix: str) -> Path:
    """A file next to a reviews file's real path (two names of one file share it)."""
    real = Path(path).expanduser().resolve()
    return real.with_name(real.name + suffix)


def lock_path(path: str | Path) -> Path:
    """The lock beside a reviews file."""
    return _beside(path, ".lock")


def partial_path(path: str | Path) -> Path:
    """Where ``overwrite`` writes until the new file is complete."""
    return _beside(path, ".partial")


class ReviewsFile:
    """Locks ``path`` and opens it for appending after checking what it already holds; use as a context manager
    (the lock is held until it exits) and call ``finish()`` when every paper is written.

    A run resumes only with the settings the file was written with (a file mixing two decodings would make a
    comparison meaningless); a last line cut by a crash is removed, with a warning, and generated again; ids written
    more than once (two runs at once before the lock existed, a file concatenated twice) are counted in
    ``duplicates``, never silently merged.
    """

    def __init__(self, path: str | Path, settings: dict, overwrite: bool = False):
        self.target = Path(path)
        self.settings = settings
        self.overwrite = overwrite
        self.done: set[str] = set()
        self.duplicates: list[str] = []  # "file:line" of each line whose id an earlier line has
        self.repaired = False
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(lock_path(path), timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            raise UserError(f"{self.target} is being written by another generate process (it holds "
                            f"{lock_path(path)}); wait until it ends, or give this run another output_file "
                            "(two runs on one file would review the same papers twice)") from None
        try:
            # overwrite: the existing file stays whole until the new one is; an interrupted overwrite resumes
            self.path = partial_path(path) if overwrite else self.target
            self.resumed_partial = overwrite and self.path.exists()
            if self.path.exists():
                self._read_existing()
        except BaseException:
            self._lock.release()
            raise

    def __enter__(self) -> "ReviewsFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the lock (a ``.partial`` of an unfinished overwrite stays, to resume)."""
        self._lock.release()

    def finish(self) -> None:
        """Every paper is written: an overwrite's new file replaces the old one."""
        if self.overwrite:
            if not self.path.exists():
                self.path.touch()
            os.replace(self.path, self.target.expanduser().resolve())
            self.path = self.target

    def _read_existing(self) -> None:
        data = self.path.read_bytes()
        complete = data[:data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # killed in the middle of a write: that review is generated again
            with self.path.open("r+b") as f:
                f.truncate(len(complete))
            self.repaired = True
        if self.overwrite:
            start_over = (f"delete {self.path} (what an interrupted --overwrite run wrote) to start over, or use "
                          "another output_file")
        else:
            start_over = "use another output_file, or pass --overwrite true to start over"
        seen_at: dict[str, int] = {}
        for number, raw in enumerate(complete.split(b"\n"), 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise UserError(f"{self.path}:{number}: not UTF-8 text; it is not a reviews file written by "
                                f"generate: {start_over}") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{self.path}:{number}: not JSON ({exc.msg}); it is not a reviews file written by "
                                f"generate: {start_over}") from None
            if not isinstance(obj, dict) or "id" not in obj:
                raise UserError(f"{self.path}:{number}: not a review with an id; it is not a reviews file written "
                                f"by generate: {start_over}")
            if obj.get("settings") != self.settings:
                changed = sorted(k for k in set(obj.get("settings") or {}) | set(self.settings)
                                 if (obj.get("settings") or {}).get(k) != self.settings.get(k))
                raise UserError(f"{self.path}:{number}: written with other settings (differs in "
                                f"{', '.join(changed)}); a resumed run must decode as the first one did: {start_over}")
            paper_id = str(obj["id"])
            if paper_id in seen_at:
                self.duplicates.append(f"{self.path}:{number}")
            seen_at.setdefault(paper_id, number)
            self.done.add(paper_id)

    def write(self, record: dict) -> None:
        """Append one review, with the rating it states, and make it durable before the next one starts."""
        line = {**record, "rating": parse_rating(record["review"]), "settings": self.settings}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done.add(str(record["id"]))
