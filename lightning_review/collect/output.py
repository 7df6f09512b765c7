"""The output file, written one paper a line as each is done, so that a stopped run resumes: the ids already in
the file are skipped, a last line cut by a crash is removed and made again, and every line is flushed to disk
before the next paper starts. Papers come in a fixed order (by note id), so a resumed run ends with the same file as
an uninterrupted one."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import UserError


class PaperWriter:
    def __init__(self, path: str | Path, overwrite: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if overwrite and self.path.exists():
            self.path.unlink()
        self.done: set[str] = set()
        self.cut_line = False
        if self.path.exists():
            self._recover()
        self._file = self.path.open("a", encoding="utf-8")

    def _recover(self) -> None:
        raw = self.path.read_bytes()
        keep = raw[: raw.rfind(b"\n") + 1]  # a last line without its newline was cut by a crash
        self.cut_line = len(keep) != len(raw)
        try:
            text = keep.decode("utf-8")
        except UnicodeDecodeError as exc:
            lineno = keep.count(b"\n", 0, exc.start) + 1
            raise UserError(f"{self.path}:{lineno}: not UTF-8, so not a paper line this "
                            "command wrote; give another --output_file, or --overwrite true to start over") from None
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                self.done.add(str(json.loads(line)["id"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserError(f"{self.path}:{lineno}: not a paper line this command wrote; give another "
                                "--output_file, or --overwrite true to start over") from None
        if self.cut_line:
            with self.path.open("r+b") as f:
                f.truncate(len(keep))

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done.add(str(record["id"]))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "PaperWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
