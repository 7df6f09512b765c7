"""The output file, written one paper a line as each is done, so that a stopped run resumes: the ids already in
the file are skipped, a last line cut by a crash is removed and made again, and every line is flushed to disk
before the next paper starts. Papers come in a fixed order (by note id), so a resumed run ends with the same file as
an uninterrupted one. ``overwrite`` keeps the old file until the new one is complete. All of it is the shared
resumable JSONL output's (lightning_review.artifacts.resumable_jsonl), named for collect."""

from __future__ import annotations

from ..artifacts.resumable_jsonl import ResumableJsonl


class PaperWriter(ResumableJsonl):
    COMMAND = "collect"
    FLAG = "--output_file"
    FILE_KIND = "paper file"
    RECORD = "paper"
    TWICE = "collect the same papers twice"
