"""A persistent cache of API answers (SQLite), shared by the judges and the API generation backend: rerunning an
evaluation or a generation makes no calls, and an interrupted one resumes where it stopped. Keyed by model, prompt
version and a hash of the inputs; values are the parsed answers with their token counts. No API key or request header
is stored."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any


def call_key(model: str, prompt_version: str, inputs: Any) -> str:
    payload = json.dumps([model, prompt_version, inputs], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class AnswerCache:
    """``get`` / ``put`` of answers by key; safe to share between threads of one process."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT, prompt_version TEXT, "
                         "answer TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, "
                         "created TIMESTAMP DEFAULT CURRENT_TIMESTAMP)")
        self._db.commit()

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT answer FROM calls WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, prompt_version: str, answer: dict, prompt_tokens: int = 0,
            completion_tokens: int = 0) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO calls (key, model, prompt_version, answer, prompt_tokens, "
                             "completion_tokens) VALUES (?, ?, ?, ?, ?, ?)",
                             (key, model, prompt_version, json.dumps(answer), prompt_tokens, completion_tokens))
            self._db.commit()

    def usage(self) -> dict[str, dict[str, int]]:
        """Calls and tokens per model, as cached."""
        with self._lock:
            rows = self._db.execute("SELECT model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) FROM calls "
                                    "GROUP BY model").fetchall()
        return {model: {"calls": n, "prompt_tokens": p or 0, "completion_tokens": c or 0} for model, n, p, c in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
