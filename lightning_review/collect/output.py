"""The output file, written one paper a line as each is done, so that a stopped run resumes: the ids already in
the file are skipped, a last line cut by a crash is removed and made again, and every line is flushed to disk
before the next paper starts. Papers come in a fixed order (by note id), so a resumed run ends with the same file as
an uninterrupted one. ``overwrite`` keeps the old file until the new one is complete. All of it is the shared
resumable JSONL output's (lightning_review.artifacts.resumable_jsonl), named for collect.

Every line holds every field of the paper-with-reviews format (PAPER_FIELDS), null where its source does not say:
a folder of PDFs knows no decision, venue, status, keywords or URL. So a folder's file and a venue's have the same
fields, and a table or a dataset built from both has one schema, not a column missing from some lines."""

from __future__ import annotations

from ..artifacts.resumable_jsonl import ResumableJsonl

# The fields of a collected paper, in the order a line holds them (the README's collect section lists them).
PAPER_FIELDS = ("id", "title", "abstract", "paper", "reviews", "decision", "venue", "status", "keywords", "source",
                "url")


def with_every_field(record: dict) -> dict:
    """``record`` with each of PAPER_FIELDS it lacks as None, in PAPER_FIELDS' order (its other fields after)."""
    return {name: record.get(name) for name in PAPER_FIELDS} | record


class PaperWriter(ResumableJsonl):
    COMMAND = "collect"
    FLAG = "--output_file"
    FILE_KIND = "paper file"
    RECORD = "paper"
    TWICE = "collect the same papers twice"

    def write(self, record: dict) -> None:
        """Append one paper with every field of the format (with_every_field), durable before the next starts."""
        super().write(with_every_field(record))
