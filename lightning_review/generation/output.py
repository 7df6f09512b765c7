"""The reviews file: one JSON object a line, appended as each review is done, so an interrupted run resumes.

Each line: ``{"id", "system", "review", "prompt_tokens", "generated_tokens", "truncated", "paper_tokens_removed",
"finish_reason", "settings"}``. The evaluator reads ``id`` and ``review``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class ReviewsFile:
    """Opens ``path`` for appending after checking what it already holds.

    A run resumes only with the settings the file was written with (a file mixing two decodings would make a
    comparison meaningless); a last line cut by a crash is removed, with a warning, and generated again.
    """

    def __init__(self, path: str | Path, settings: dict, overwrite: bool = False):
        self.path = Path(path)
        self.settings = settings
        self.done: set[str] = set()
        self.repaired = False
        if overwrite and self.path.exists():
            self.path.unlink()
        if self.path.exists():
            self._read_existing()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _read_existing(self) -> None:
        data = self.path.read_bytes()
        complete = data[:data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # killed in the middle of a write: that review is generated again
            with self.path.open("r+b") as f:
                f.truncate(len(complete))
            self.repaired = True
        for number, line in enumerate(complete.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{self.path}:{number}: not JSON ({exc.msg}); it is not a reviews file written by "
                                 "generate. Choose another output_file, or pass --overwrite true") from None
            if obj.get("settings") != self.settings:
                changed = sorted(k for k in set(obj.get("settings") or {}) | set(self.settings)
                                 if (obj.get("settings") or {}).get(k) != self.settings.get(k))
                raise ValueError(f"{self.path}:{number}: written with other settings (differs in {', '.join(changed)})"
                                 "; a resumed run must decode as the first one did. Use another output_file, or "
                                 "pass --overwrite true to start over")
            self.done.add(str(obj["id"]))

    def write(self, record: dict) -> None:
        """Append one review and make it durable before the next one starts."""
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({**record, "settings": self.settings}, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done.add(str(record["id"]))
