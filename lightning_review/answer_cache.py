"""A persistent cache of API answers (SQLite), shared by the judges and the API generation backend: rerunning an
evaluation or a generation makes no calls, and an interrupted one resumes where it stopped. Keyed by model, prompt
version, a hash of the inputs and, where the caller gives it, the endpoint (two servers can serve different models
under one name); values are the parsed answers with their token counts. No API key or request header is stored.

Identical calls in flight at once in one process are made once (``fetch``: later callers await the first one's
answer), since a whole evaluation is gathered at once and every human review is asked for by every system. Several
processes may share one file: SQLite's WAL journal lets readers run beside a writer, and a writer waits up to
``BUSY_TIMEOUT_S`` for another process's write instead of failing (each process may still ask what the other is
asking at the same moment; the later answer replaces the earlier one)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from .errors import UserError

BUSY_TIMEOUT_S = 60.0


def call_key(model: str, prompt_version: str, inputs: Any, endpoint: str | None = None) -> str:
    """The hash of a call. ``endpoint``: the address of the server asked (openai_client.public_url's form: no
    credentials, which are not part of what is asked), so one model name at two servers gives two keys; without it,
    the key as it always was (answers cached before endpoints were keyed are found by such callers only)."""
    parts = [model, prompt_version, inputs] if endpoint is None else [model, prompt_version, inputs,
                                                                       {"endpoint": endpoint}]
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class CorruptCache(UserError):
    """The cache file is not a readable SQLite database: the message names it and says how to recover."""

    def __init__(self, path: Path, cause: sqlite3.DatabaseError):
        super().__init__(f"{path}: the answer cache is unreadable ({cause}); move it aside (mv {path} {path}.corrupt) "
                         "and run again: only the cached answers in it are lost (they are asked again, at their "
                         "price), nothing else")


class AnswerCache:
    """``get`` / ``put`` of answers by key, ``fetch`` with single flight; safe to share between threads of one
    process and between processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._made = missing_dirs(self.path.parent)  # what this cache creates: close(remove_if_unused=True) undoes it
        self._created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._in_flight: dict[str, asyncio.Future] = {}
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        except sqlite3.OperationalError as exc:
            raise UserError(f"{self.path}: cannot open the answer cache ({exc}); give a writable file path") from None
        with self._guarded() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT, prompt_version TEXT, "
                       "answer TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, "
                       "created TIMESTAMP DEFAULT CURRENT_TIMESTAMP)")
            db.commit()

    @contextmanager
    def _guarded(self) -> Iterator[sqlite3.Connection]:
        """The connection under the thread lock; a corrupt file becomes CorruptCache (a lock held by another process
        past the busy timeout stays an OperationalError: that is no user's mistake to fix in the file)."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.OperationalError:
                raise
            except sqlite3.DatabaseError as exc:
                raise CorruptCache(self.path, exc) from None

    def get(self, key: str) -> dict | None:
        with self._guarded() as db:
            row = db.execute("SELECT answer FROM calls WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, prompt_version: str, answer: dict, prompt_tokens: int = 0,
            completion_tokens: int = 0) -> None:
        with self._guarded() as db:
            db.execute("INSERT OR REPLACE INTO calls (key, model, prompt_version, answer, prompt_tokens, "
                       "completion_tokens) VALUES (?, ?, ?, ?, ?, ?)",
                       (key, model, prompt_version, json.dumps(answer), prompt_tokens, completion_tokens))
            db.commit()

    async def fetch(self, key: str, make: Callable[[], Awaitable[dict]]) -> dict:
        """The cached answer of ``key``, else ``make()``'s (which puts it). Callers asking for a key whose
        ``make()`` is already running in this process await that one instead of calling again."""
        cached = self.get(key)
        if cached is not None:
            return cached
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._in_flight.pop(key, None) if self._in_flight.get(key) is done
                                   else None)
        return await asyncio.shield(task)

    def usage(self) -> dict[str, dict[str, int]]:
        """Calls and tokens per model, as cached."""
        with self._guarded() as db:
            rows = db.execute("SELECT model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) FROM calls "
                              "GROUP BY model").fetchall()
        return {model: {"calls": n, "prompt_tokens": p or 0, "completion_tokens": c or 0} for model, n, p, c in rows}

    def close(self, remove_if_unused: bool = False) -> None:
        """``remove_if_unused``: a file this cache created that holds no answer is removed, with its journal files
        and the directories made for it that are left empty (a failed run leaves no empty cache behind); a file that
        existed before, or holds answers, is kept."""
        with self._lock:
            unused = (remove_if_unused and self._created
                      and self._db.execute("SELECT 1 FROM calls LIMIT 1").fetchone() is None)
            self._db.close()
        if unused:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            remove_empty_dirs(self._made)


def missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first: the directories a ``mkdir(parents=True)``
    of ``path`` would make."""
    missing = []
    for directory in (path, *path.parents):
        if directory.exists():
            break
        missing.append(directory)
    return missing


def remove_empty_dirs(made: list[Path]) -> None:
    """The directories of ``made`` (deepest first) that are empty, removed; one that holds anything stops it."""
    for directory in made:
        try:
            directory.rmdir()
        except OSError:  # not empty (or gone): it and its parents stay
            break
