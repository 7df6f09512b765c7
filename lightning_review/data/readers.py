"""Readers for the forms paper->review data comes in, all producing the same validated Record, with a policy for
bad input: ``strict`` stops at the first bad record (file:line and reason), ``skip`` skips it, counts it by reason
and writes it to a rejects file. Nothing disappears silently: duplicates and too-short reviews are counted too. A
line that is not UTF-8 is a bad record like any other (file:line), not the end of the file. Records are one paper
when they share its id (or, without an id, its whitespace-normalised text): lightning_review.data.papers.

Formats (``auto`` decides from the path and the first line):
  jsonl          {"paper", "review", optional "id", "title", "rating"} a line
  chat           OpenAI chat fine-tuning JSONL: {"messages": [system, user (paper), assistant (review)]}; the
                 line's own system message is kept in ``Record.extra["system_prompt"]`` (``openai export`` uses it;
                 local training refuses one other than its data.system_prompt: ``refuse_other_system_messages``)
  paper_reviews  a paper with a list of reviews a line (the PeerRead sample in ../shared/data):
                 {"id", "title", "paper", "reviews": [{"text", "rating", ...}]}: one record per non-empty review
  peerread       a PeerRead split directory: reviews/<id>.json + parsed_pdfs/<id>.pdf.json (science-parse sections
                 joined into the paper); meta-reviews, author replies (no recommendation) and empty comments excluded
  json, csv      a JSON array of objects or a CSV file, with ``mapping`` {our field: their column}

Documents without reviews (``need_review=False``, the text task's plain long text for context extension): a line or
row needs only its document, in ``paper`` or ``text`` (one of the two; the ``paper`` column of ``mapping`` where
given), e.g. ``{"id": "doc-1", "text": "..."}``; reviews and ratings are not read, nor min_review_chars applied. A
chat line needs only its user message; a paper_reviews line is read as one document, whatever its reviews; a
PeerRead directory as in the review task. A line with no document is still a bad record naming file and line.

Fields not read (extra metadata, or one of ours misspelt) are one warning a file, each named with where it first
appears and, where it is plainly a misspelling, the field of ours it stands for (_likely): top-level ones and, where
reviews are read, those of each review (``reviews[].ratng``). Not reported: the paper_reviews format's own metadata,
which collect writes (PAPER_REVIEWS_METADATA); in a PeerRead directory, any field but a plain misspelling of one we
read, since PeerRead files hold many fields of their own (PEERREAD_OTHER), whether or not the file gives a record;
parsed_pdfs (science-parse output) are not checked. A PeerRead misspelling that would drop reviews without a word
(``reviews``, a review's ``RECOMMENDATION``) is a bad record.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Container, Iterator, Literal, NamedTuple

from ..errors import UserError, json_error
from ..safe_paths import atomic_writer, refuse_output_over_input
from .field_names import misspelling_edits, normal_name
from .papers import count_papers, id_conflicts, looks_swapped
from .records import (DataFileNotFound, Record, RecordError, default_record_id, document_field, iter_json_lines,
                      iter_json_objects, normalise_whitespace, record_from_fields, record_id, text_key,
                      too_many_digits, unpaired_surrogate)

Format = Literal["auto", "jsonl", "chat", "paper_reviews", "peerread", "json", "csv"]
Policy = Literal["strict", "skip"]
# What the data trains: paper -> review examples, or documents alone (need_review=False), as data.task names them.
Task = Literal["review", "text"]
FIELDS = ("id", "paper", "review", "title", "rating")
MAPPED_FORMATS = ("json", "csv")  # the formats whose columns data.column_mapping names
# The settings of reading that a command may have, by their names in fit's config (data.<name>) and the tools' flags.
READ_SETTINGS = ("data_format", "column_mapping", "on_bad_record", "rejects_file", "min_review_chars")


class Spelling(NamedTuple):
    """How the command the user ran names the reader's settings, so that a message names one the user can give:
    ``prefix`` ``data.`` for fit's config keys (``data.column_mapping``), ``--`` for a tool's flags
    (``--column_mapping``); ``settings``: those of READ_SETTINGS the command has (openai export has none, evaluate
    no column mapping), where a message without the setting gives the fix in the file (a field's name, the file's
    suffix) instead."""

    prefix: str = "data."
    settings: Container[str] = READ_SETTINGS

    def __call__(self, name: str) -> str | None:
        """The setting ``name`` as the command spells it, or None where the command has no such setting."""
        return f"{self.prefix}{name}" if name in self.settings else None


FIT = Spelling()  # fit's: data.<name>, every setting


@dataclass
class ReadReport:
    """What a read kept and what it did not, by reason, and warnings about the data as a whole."""

    records: list[Record] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    duplicates: int = 0
    rejects_file: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"records": len(self.records), "papers": count_papers(self.records),
                "rejected": dict(self.rejected), "duplicates_dropped": self.duplicates,
                "rejects_file": self.rejects_file, "warnings": list(self.warnings)}


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "peerread"
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() == ".json":
        return "json"
    return _json_lines_format(path)


def _json_lines_format(path: Path) -> str:
    """Which JSON-lines format (jsonl, chat, paper_reviews) the first line of ``path`` is in."""
    try:
        first = next(iter_json_objects(path), (None, {}))[1]
    except RecordError:
        return "jsonl"  # the reader will name the bad line
    if "messages" in first:
        return "chat"
    if isinstance(first.get("reviews"), list):
        return "paper_reviews"
    return "jsonl"


def rejects_file_problem(rejects_file: str | Path | None, policy: str, prefix: str = "data.") -> str | None:
    """What is wrong with listing rejects under ``policy``, if anything: only ``skip`` leaves records out to list.
    The settings are spelt as the command the user ran spells them: ``prefix`` ``data.`` for fit's
    ``data.rejects_file``, ``--`` for prepare's and evaluate's ``--rejects_file``."""
    if not rejects_file or policy == "skip":
        return None
    rejects, on_bad = f"{prefix}rejects_file", f"{prefix}on_bad_record"
    return (f"{rejects}={rejects_file} lists the records {on_bad}=skip leaves out, but {on_bad} is {policy} (it "
            f"stops at the first bad record, naming it, and lists nothing): set {on_bad} skip, or leave {rejects} out")


def read_records(path: str | Path, format: Format = "auto", mapping: dict[str, str] | None = None,
                 policy: Policy = "strict", rejects_file: str | Path | None = None,
                 min_review_chars: int = 20, need_review: bool = True, prefix: str = "data.",
                 settings: Container[str] = ()) -> ReadReport:
    """Every record of ``path`` in the given (or detected) format, validated under ``policy``. Without
    ``need_review``, documents with or without reviews (the text task; see the module's docstring). ``prefix`` and
    ``settings``: how the command the user ran spells the settings its messages name, and which of READ_SETTINGS it
    has (Spelling: ``data.`` for fit's ``data.rejects_file``, ``--`` for a tool's ``--rejects_file``). A caller
    that names none (the tools that read with the defaults: openai export, perplexity) is told the fix in the file
    (a field's or the file's name); a setting it passes (``rejects_file``, a ``format`` or ``mapping``) is named
    with ``prefix`` (the command line shows ``data.<name>`` as a tool's ``--<name>``: cli.as_tool_flags).

    Besides each record on its own, the records are checked together: exact duplicates are dropped and counted
    (under either policy), and a paper id given to different paper texts (beyond whitespace) is an error under
    ``strict``; under ``skip`` every record of that id is rejected, since which text is the id's paper cannot be
    told. The rejects file (never the data file itself) is written under a temporary name and renamed at the end.
    """
    path = Path(path)
    if not path.exists():
        raise DataFileNotFound(f"{path}: no such data file or directory")
    given = {"data_format": format != "auto", "column_mapping": bool(mapping), "rejects_file": bool(rejects_file)}
    says = Spelling(prefix, {*settings, *(name for name, on in given.items() if on)})  # one given: the command has it
    refuse_output_over_input(rejects_file, [path], f"{prefix}rejects_file")
    check_column_mapping(mapping, prefix)
    fmt = detect_format(path) if format == "auto" else format
    if mapping and fmt in READERS and fmt not in MAPPED_FORMATS:
        raise UserError(f"{path}: {prefix}column_mapping names the columns of JSON and CSV data, but this is read as "
                        f"{fmt} data, whose fields have fixed names (see {prefix}data_format): rename the fields in "
                        f"the file, or leave {prefix}column_mapping out")
    _refuse_other_form(path, format, fmt, says)
    report = ReadReport(rejects_file=str(rejects_file) if rejects_file else None)
    known = fields_read(fmt, mapping or {}, need_review)
    not_read: dict[str, NotRead] = {}  # a field no reader reads -> where it first appears
    seen: set[tuple[str | None, str, str]] = set()
    rejects: list[dict] = []

    def reject(where: str, exc: RecordError) -> None:
        if policy == "strict" and exc.reason != "duplicate":
            raise exc
        if exc.reason == "duplicate":
            report.duplicates += 1
        report.rejected[exc.reason] += 1
        rejects.append({"where": where, "reason": exc.reason, "message": str(exc)})

    for where, item in _candidates(path, fmt, mapping or {}, need_review, says):
        # a bad row's fields count too (a reader may give its error the fields not read: ``unknown``), and those of a
        # source that gives no record (FieldsNotRead)
        unknown = (item.get("_unknown") if isinstance(item, dict) else getattr(item, "unknown", None)) or {}
        for name, first in unknown.items():
            not_read.setdefault(name, first)
        if isinstance(item, FieldsNotRead):
            continue
        try:
            try:
                if isinstance(item, RecordError):
                    raise item
                record = record_from_fields(item, where, item.get("_default_id", where), str(path), need_review)
            except RecordError as exc:
                if unknown and exc.reason.startswith("missing_"):  # a misspelt field is the likely cause: say so
                    raise RecordError(f"{exc}; {_HOLDS.get(fmt, 'the line has fields')} that are not read: "
                                      f"{', '.join(map(repr, unknown))} (misspelt or renamed?)", exc.reason) from None
                raise
            if need_review and len(record.review.strip()) < min_review_chars:
                raise RecordError(f"{where}: the review has {len(record.review.strip())} characters, fewer than "
                                  f"{_least_review(min_review_chars, says)}", "review_too_short")
            key = (record.paper_id, text_key(record.paper), normalise_whitespace(record.review))
            if key in seen:
                raise RecordError(f"{where}: duplicate of an earlier record (same paper and review)", "duplicate")
            seen.add(key)
            report.records.append(record)
        except RecordError as exc:
            reject(where, exc)
    swapped = looks_swapped(report.records) if need_review else None
    swap_hint = (f"; the reviews are longer than the papers on average ({swapped[0]:,.0f} vs {swapped[1]:,.0f} "
                 f"characters): are the paper and review columns swapped? ({_swap_check(says)})") if swapped else ""
    conflicts = id_conflicts(report.records)
    if conflicts:
        more = f"; {len(conflicts) - 1} more ids like it" if len(conflicts) > 1 else ""
        message = (f"{path}: {conflicts[0].describe()}{more}. One id must name one paper: give each paper its own id "
                   f"or fix the text{swap_hint}")
        if policy == "strict":
            skip = says("on_bad_record")
            raise RecordError(message + (f"; {skip}=skip leaves out every record of such ids" if skip else ""),
                              "id_with_different_papers")
        bad = {c.paper_id: c for c in conflicts}
        kept = []
        for record in report.records:
            if record.paper_id in bad:
                reject(record.where or record.id, RecordError(
                    f"{record.where}: {bad[record.paper_id].describe()}; which is the paper of this id cannot be "
                    "told, so all its records are left out", "id_with_different_papers"))
            else:
                kept.append(record)
        report.records = kept
    if swapped:
        report.warnings.append(f"{path}: the reviews are longer than the papers on average ({swapped[0]:,.0f} vs "
                               f"{swapped[1]:,.0f} characters): are the paper and review columns swapped? "
                               f"{_swap_check(says).capitalize()} (papers that are only abstracts can be shorter than "
                               "reviews: then ignore this)")
    if not_read:
        report.warnings.append(_not_read_warning(path, fmt, not_read, known, says=says))
    if rejects_file:
        with atomic_writer(rejects_file) as f:
            for entry in rejects:
                f.write(json.dumps(entry) + "\n")
    return report


def _least_review(min_review_chars: int, says: Spelling) -> str:
    """The shortest review allowed, named by the command's setting where it has one (evaluate, openai export: none)."""
    setting = says("min_review_chars")
    return f"{setting}={min_review_chars}" if setting else f"the {min_review_chars} a review needs"


def _swap_check(says: Spelling) -> str:
    """What to check when the papers look like reviews and the reviews like papers: the column mapping, where the
    command has one, else the file's fields themselves."""
    mapping = says("column_mapping")
    return f"see {mapping}" if mapping else "see which of the file's fields holds the paper and which the review"


# Fields a reader fills itself, never the user's: a line's own field of one of these names is not read (it would set
# the record's paper id or system prompt past their checks) and is reported as a field not read.
_INTERNAL = {"_default_id", "_paper_id", "_system_prompt", "_labels", "_line_form", "_unit", "_remove", "_unknown"}
# What holds the fields not read that a record's missing-field error names, where that is not its line: a CSV file's
# header, a JSON array's object, a PeerRead reviews file (its fields and its reviews').
_HOLDS = {"csv": "the file has columns", "json": "the object has fields", "peerread": "the file has fields"}


# How the fields of a line's (or PeerRead file's) review objects are named among the fields read and not read
# (``reviews[].rating``): one name for the field in every review, since the warning lists each field once a file.
IN_REVIEWS = "reviews[]."
# Fields of the paper_reviews format that are not read: collect writes them (lightning_review.collect.command), as
# the PeerRead sample in ../shared/data has them, so they are no news to warn about.
PAPER_REVIEWS_METADATA = ("abstract", "decision", "keywords", "status", "url", "venue", IN_REVIEWS + "reviewer",
                          IN_REVIEWS + "confidence")
# What a PeerRead reviews/<id>.json file gives that the peerread reader reads.
PEERREAD_READ = ("id", "title", "reviews") + tuple(IN_REVIEWS + name for name in (
    "comments", "RECOMMENDATION", "IS_META_REVIEW", "is_meta_review"))
# The other fields of real PeerRead reviews files (ACL 2017, CoNLL 2016, ICLR 2017, arXiv): read by no one here, and
# never reported, even where one looks like a field we read (``RECOMMENDATION_UNOFFICIAL``).
PEERREAD_OTHER = ("abstract", "accepted", "authors", "conference", "histories", "DATE_OF_SUBMISSION", "SUBJECTS",
                  "VERSION") + tuple(IN_REVIEWS + name for name in (
                      "APPROPRIATENESS", "CLARITY", "DATE", "IMPACT", "IS_ANNOTATED", "MEANINGFUL_COMPARISON",
                      "ORIGINALITY", "OTHER_KEYS", "PRESENTATION_FORMAT", "RECOMMENDATION_UNOFFICIAL", "REPLICABILITY",
                      "REVIEWER_CONFIDENCE", "SOUNDNESS_CORRECTNESS", "SUBSTANCE", "TITLE"))


def fields_read(fmt: str, mapping: dict[str, str], need_review: bool) -> tuple[str, ...] | None:
    """The fields (JSON) or columns (CSV) a format's reader reads, those of a review object named under IN_REVIEWS
    (``reviews[].rating``) where the reader reads a list of reviews; None for an unknown format."""
    if fmt in MAPPED_FORMATS:
        columns = [mapping.get(name, name) for name in FIELDS]
        if not need_review and "paper" not in mapping:
            columns.append("text")  # document_field: the document is the paper or the text column
        return tuple(dict.fromkeys(columns))
    jsonl = FIELDS + ("source",) + (() if need_review else ("text",))
    paper_reviews = ("id", "title", "paper", "reviews", "source", IN_REVIEWS + "text", IN_REVIEWS + "rating")
    return {"jsonl": jsonl, "chat": ("id", "messages"),
            "paper_reviews": paper_reviews if need_review else jsonl + ("reviews",), "peerread": PEERREAD_READ
            }.get(fmt)


class NotRead(NamedTuple):
    """Where a field not read first appears (``file:line``, ``file:line review 2``), and the field read it most
    likely misspells there (_likely), if any."""

    where: str
    likely: str | None = None


class FieldsNotRead(NamedTuple):
    """What a reader yields for a source that gives no record, so that its fields not read are still reported: a
    PeerRead file whose reviews are all meta-reviews or author replies."""

    unknown: dict[str, NotRead]


def _unknown(obj: dict, known: tuple[str, ...], where: str, scope: str = "",
             quiet: tuple[str, ...] = ()) -> dict[str, NotRead]:
    """{field: NotRead} for each field of the user's ``obj`` that its reader does not read (``known``), but those not
    worth a word (``quiet``: a format's own metadata); ``scope``: IN_REVIEWS for a review object, whose fields
    ``known`` and ``quiet`` name under it."""
    return {scope + name: NotRead(where, _likely(scope + name, known, obj)) for name in obj
            if scope + name not in known + quiet}


# Field names that are metadata in common paper and review data, never taken for a misspelling of one of ours, however
# close (``reviewer`` is two edits from ``review``); the formats' own metadata is added to them in _METADATA.
COMMON_METADATA = ("reviewer", "reviewers", "author", "authors", "paper_id", "review_id", "reviewed", "course",
                   "year", "date", "label", "score")
# Fields one of which holds what the other would (a text-task document): neither is suggested where the other is.
_ALTERNATIVES = {"paper": ("text",), "text": ("paper",)}


# The names of COMMON_METADATA and the formats' own metadata fields, at their level (top or in a review), as
# normal_name writes them.
_METADATA = {normal_name(scope + name) for name in COMMON_METADATA for scope in ("", IN_REVIEWS)} | {
    normal_name(name) for name in PAPER_REVIEWS_METADATA + PEERREAD_OTHER}


def _likely(name: str, known: tuple[str, ...], present: Container[str] = ()) -> str | None:
    """The field read (``known``, same level) that ``name``, a field not read, plainly misspells, else None; a wrong
    hint misleads, so: ``name`` is no metadata name (_METADATA: ``reviewer``), the field is not in ``present`` (the
    object holding ``name``) nor held there in another form (_ALTERNATIVES), and ``name`` is a plain misspelling
    of it (field_names.misspelling_edits: ``ratng``, ``reveiw``); no tie."""
    head, sep, leaf = name.rpartition(IN_REVIEWS)
    scope = head + sep
    if normal_name(name) in _METADATA:
        return None
    best: dict[int, list[str]] = {}  # edits -> fields of ours
    for ours in known:
        own = ours[len(scope):]
        if not ours.startswith(scope) or IN_REVIEWS in own or any(n in present
                                                                    for n in (own, *_ALTERNATIVES.get(own, ()))):
            continue
        edits = misspelling_edits(leaf, own)
        if edits is not None:
            best.setdefault(edits, []).append(ours)
    if not best:
        return None
    closest = best[min(best)]
    if len({normal_name(ours) for ours in closest}) > 1:
        return None  # as close to two fields of ours: which one was meant cannot be told
    return next((ours for ours in closest if ours[len(scope):].isupper() == leaf.isupper()), closest[0])


def _not_read_warning(path: Path, fmt: str, not_read: dict[str, NotRead], known: tuple[str, ...],
                      limit: int = 10, says: Spelling = FIT) -> str:
    """One line for a file's fields that no reader reads (extra metadata, or one of ours misspelt): each field with
    where it first appears and the field of ours it plainly misspells there (_likely), the fields that are read, and
    the fix."""
    def place(where: str) -> str:
        rest = where[len(str(path)):] if where.startswith(str(path)) else where
        return f"line {rest[1:]}" if rest.startswith(":") else rest.lstrip("/")  # a file of a PeerRead directory

    shown = ", ".join(f"{name!r} (first at {place(first.where)}"
                      f"{f'; did you mean {first.likely!r}?' if first.likely else ''})"
                      for name, first in list(not_read.items())[:limit])
    more = f" and {len(not_read) - limit} more" if len(not_read) > limit else ""
    what = "columns" if fmt == "csv" else "fields"
    mapping = says("column_mapping") if fmt in MAPPED_FORMATS else None
    fix = (f'name it with {mapping} (e.g. {{"review": "<your column>"}})' if mapping else
           f"rename it in the file ({fmt} fields have fixed names)" if fmt not in MAPPED_FORMATS else
           "rename it in the file to the field of ours it stands for")
    return (f"{path}: {what} not read (ignored): {shown}{more}; the {what} read are "
            f"{', '.join(map(repr, known))}. Extra metadata can stay; if one is a misspelt or renamed field of ours, "
            f"{fix}")


def _first_lines(path: Path, count: int = 5) -> list[str]:
    """The first ``count`` non-blank lines of a file (bytes that are not UTF-8 replaced; a byte order mark dropped)."""
    lines = []
    with path.open("rb") as f:
        for raw in f:
            line = raw.decode("utf-8", errors="replace").removeprefix("\ufeff").strip()
            if line:
                lines.append(line)
                if len(lines) == count:
                    break
    return lines


def _refuse_other_form(path: Path, format: str, fmt: str, says: Spelling = FIT) -> None:
    """A RecordError (the whole file, under either policy) where the file is plainly in another form than the format
    it is read as: JSON read as CSV (whose header would be the first object's text, cut at its commas), or CSV read as
    JSON lines (every line invalid JSON). ``format``: as given (auto or a format); ``fmt``: the one read. A command
    without a data format setting (openai export) reads by the file's name: the fix is then a new name."""
    if fmt not in ("csv", "jsonl", "chat", "paper_reviews") or path.is_dir():
        return
    lines = _first_lines(path)
    if not lines:
        return
    setting = says("data_format")
    named, form = ("named .csv", "CSV") if fmt == "csv" else ("not named .csv or .json", "JSON lines")
    how = (f"{setting} {format}" if format != "auto" else
           f"{setting} auto reads a file {named} as {form}" if setting else f"a file {named} is read as {form}")
    if fmt == "csv" and lines[0][0] in "{[":
        if lines[0][0] == "[":
            fix = f"set {setting} json (a JSON array of objects)" if setting else "rename the file to .json"
            form = "JSON"
        elif setting:
            fix = f"set {setting} {_json_lines_format(path)}"
            fix += " (or rename the file to .jsonl)" if format == "auto" else (
                " (or auto)" if path.suffix.lower() not in (".csv", ".json") else "")
            form = "JSON lines"
        else:
            fix, form = "rename the file to .jsonl", "JSON lines"
        raise RecordError(f"{path}:1: read as CSV ({how}), but the file looks like {form} (its first character is "
                          f"{lines[0][0]!r}); {fix}", "wrong_format")
    if fmt != "csv" and not any(line[0] in "{[" for line in lines) and (
            path.suffix.lower() == ".csv" or "," in lines[0]):
        shown = lines[0] if len(lines[0]) <= 60 else lines[0][:57] + "..."
        fix = (f"set {setting} csv" + (" (or auto)" if path.suffix.lower() == ".csv" else "") if format != "auto"
               else f"set {setting} csv (or rename the file to .csv)" if setting else "rename the file to .csv")
        raise RecordError(f"{path}:1: read as JSON lines ({how}), but the file looks like CSV (line 1 is {shown!r}, "
                          f"and none of its first {len(lines)} lines starts with '{{'); {fix}", "wrong_format")


def _candidates(path: Path, fmt: str, mapping: dict[str, str], need_review: bool,
                says: Spelling = FIT) -> Iterator[tuple[str, dict | RecordError | FieldsNotRead]]:
    if fmt not in READERS:
        raise UserError(f"unknown data format {fmt!r}; one of auto, {', '.join(READERS)}")
    yield from READERS[fmt](path, mapping, need_review, says)


def _jsonl(path: Path, mapping: dict[str, str], need_review: bool, says: Spelling = FIT):
    yield from _json_lines(path, fields_read("jsonl", mapping, need_review))


def _json_lines(path: Path, known: tuple[str, ...], quiet: tuple[str, ...] = ()):
    for where, obj in iter_json_lines(path):
        if isinstance(obj, dict):
            users = {name: value for name, value in obj.items() if name not in _INTERNAL}
            obj = {**users, "_default_id": default_record_id(path, where),
                   "_unknown": _unknown(obj, known, where, quiet=quiet)}
        yield where, obj


def _chat(path: Path, mapping: dict[str, str], need_review: bool, says: Spelling = FIT):
    for where, obj in iter_json_lines(path):
        if isinstance(obj, RecordError):
            yield where, obj
            continue
        messages = obj.get("messages") or []
        at = {role: [j for j, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == role]
              for role in ("system", "user", "assistant")}
        contents = {role: [messages[j].get("content") for j in places] for role, places in at.items()}
        user, assistant, system = contents["user"], contents["assistant"], contents["system"]
        if len(user) != 1 or len(assistant) > 1 or (need_review and not assistant):
            wanted = "one assistant message (the review)" if need_review else "at most one assistant message"
            yield where, RecordError(f"{where}: a chat example needs exactly one user message (the paper) and "
                                     f"{wanted}, found {len(user)} and {len(assistant)}", "bad_chat_example")
            continue
        if len(system) > 1 or system and (not isinstance(system[0], str) or not system[0].strip()):
            yield where, RecordError(f"{where}: a chat example has at most one system message, with text; found "
                                     f"{len(system)}{'' if len(system) > 1 else ' without text'}: merge or remove "
                                     "them", "bad_chat_example")
            continue
        item = {"paper": user[0], "review": assistant[0] if assistant else None,
                "_system_prompt": system[0] if system else None,
                "_default_id": default_record_id(path, where),
                "_labels": {"paper": f"field 'messages[{at['user'][0]}].content' (the user message)",
                            "review": f"field 'messages[{at['assistant'][0]}].content' (the assistant message)"
                            if assistant else "the assistant message"},
                "_unknown": _unknown(obj, fields_read("chat", mapping, need_review), where)}
        if "id" in obj:  # null is a bad id (record_id), not no id
            item["id"] = obj["id"]
        yield where, item


def refuse_other_system_messages(records: list[Record], system_prompt: str, path: str | Path,
                                 prefix: str = "data.") -> None:
    """Refuse chat lines whose own system message is not ``system_prompt`` (whitespace at the ends aside); ``prefix``
    spells the setting as the command does (fit's ``data.system_prompt``, prepare's ``--system_prompt``).

    Local training builds every example's prompt with one system prompt, data.system_prompt, through the prompt code
    that ``generate`` uses with its ``--system_prompt`` (lightning_review.data.prompt.ReviewPromptTokenizer, one
    prompt for all papers: a papers file has no system messages). A line's other system message would be left out
    of its example without a word, while ``openai export`` sends it; training on it per line would give the model
    prompts that generation never builds. The error names the first such line, how many there are, and the fix."""
    other = [r for r in records if r.extra.get("system_prompt") is not None
             and r.extra["system_prompt"].strip() != system_prompt.strip()]
    if not other:
        return
    texts = {r.extra["system_prompt"].strip() for r in other}
    first, setting = other[0], f"{prefix}system_prompt"
    if len(texts) == 1 and len(other) == len(records):
        fix = (f"every line has this same system message: to train with it, set {setting} to it (and "
               f"generate with the same --system_prompt); to train with {setting}, remove the lines' "
               "system messages")
    else:
        fix = (f"{len(other)} of the {len(records)} lines {'has' if len(other) == 1 else 'have'} a system message "
               f"other than {setting} "
               f"({len(texts)} different one{'s' if len(texts) > 1 else ''}); one system prompt serves all: "
               f"remove the lines' system messages ({setting} is then used), or give every line the same "
               f"one and set {setting} to it (and generate with the same --system_prompt)")
    raise UserError(f"{first.where or path}: field 'messages' has a system message, "
                    f"{_clip(first.extra['system_prompt'])!r}, other than {setting}, "
                    f"{_clip(system_prompt)!r}. Local training and generate build every prompt with "
                    f"{setting}, so this line's own would not be trained on (openai export would send it); "
                    f"{fix}")


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


# What a paper_reviews line holds, as the messages about a bad line show it.
PAPER_REVIEWS_LINE = '{"paper": "...", "reviews": [{"text": "...", "rating": ...}]}'


def _paper_reviews(path: Path, mapping: dict[str, str], need_review: bool, says: Spelling = FIT):
    known = fields_read("paper_reviews", mapping, need_review)
    if not need_review:
        yield from _json_lines(path, known, PAPER_REVIEWS_METADATA)  # one document a line: its reviews are not read
        return
    for where, obj in iter_json_lines(path):
        if isinstance(obj, RecordError):
            yield where, obj
            continue
        reviews = obj.get("reviews")
        if not isinstance(reviews, list) or not reviews:
            yield where, RecordError(f"{where}: field 'reviews' must be a non-empty list (each line needs "
                                     f"{PAPER_REVIEWS_LINE}); add the paper's reviews or remove the line", "no_reviews")
            continue
        try:
            given = record_id(obj, where)
        except RecordError as exc:
            yield where, exc
            continue
        paper_id = given or default_record_id(path, where)
        unknown = _unknown(obj, known, where, quiet=PAPER_REVIEWS_METADATA)
        for i, review in enumerate(reviews):
            at = f"{where} review {i}"
            if not isinstance(review, dict):
                yield at, _not_a_review(at, i, review, '{"text": "...", "rating": ...}')
                continue
            item = {"id": f"{paper_id}#{i}", "_paper_id": given, "title": obj.get("title"),
                    "rating": _number(review.get("rating")), "source": obj.get("source"),
                    "_unknown": {**unknown, **_unknown(review, known, at, IN_REVIEWS, PAPER_REVIEWS_METADATA)},
                    "_labels": {"review": f"field 'reviews[{i}].text'", "rating": f"field 'reviews[{i}].rating'"},
                    "_line_form": PAPER_REVIEWS_LINE, "_remove": "that review"}
            for name, theirs in (("paper", "paper"), ("review", "text")):
                if theirs in (obj if name == "paper" else review):  # absent stays absent: "missing field"
                    item[name] = (obj if name == "paper" else review)[theirs]
            yield at, item


def _not_a_review(at: str, i: int, review, form: str) -> RecordError:
    """The RecordError of a review list's entry that is no object: it has no fields to read."""
    return RecordError(f"{at}: field 'reviews[{i}]' must be an object ({form}), got {type(review).__name__}; fix or "
                       "remove that review", "not_an_object")


def _peerread_unknown(obj: dict, where: str, scope: str = "") -> dict[str, NotRead]:
    """The fields of a PeerRead reviews file (``scope`` IN_REVIEWS: of one of its reviews) to report as not read:
    those of no real PeerRead file that plainly misspell one we read (_likely). PeerRead files hold many fields we
    do not read (scores, dates, histories), as other tools' files may hold others: those are no news."""
    return {name: first for name, first in _unknown(obj, PEERREAD_READ, where, scope, PEERREAD_OTHER).items()
            if first.likely}


# What a PeerRead review needs, as the messages about a missing field or a review that is no object show it.
PEERREAD_REVIEW = '{"comments": "...", "RECOMMENDATION": ...}'


def _misspelt(unknown: dict[str, NotRead], name: str) -> str | None:
    """The first field not read that plainly misspells our field ``name`` (PeerRead), if any."""
    return next((typo for typo, first in unknown.items() if first.likely == name), None)


def _misspelt_error(at: str, field: str, typo: str, loss: str, remove: str,
                    unknown: dict[str, NotRead]) -> RecordError:
    """The RecordError of a field we need that is absent while a misspelling of it is there: read as it is, the
    data would be lost without a word (``loss``), so it is an error, not only a field not read."""
    error = RecordError(f"{at}: no field {field!r} but a field {typo!r}, so {loss}: rename it "
                        f"{field.rsplit('.', 1)[-1]!r}, or remove {remove}", "misspelt_field")
    error.unknown = unknown
    return error


def _peerread_review(review, at: str, i: int, paper_id: str, title, text: str, unknown: dict[str, NotRead],
                     own: dict[str, NotRead]) -> dict | RecordError | None:
    """The item of the ``i``th review of a PeerRead file, None for one that is no reviewer's review (a meta-review,
    an author reply or a comment, without a recommendation), or the RecordError of one that is bad; a review left
    out for no recommendation but with a field like it (``RECOMENDATION``, among its ``own`` fields not read) is an
    error, not a silent loss. ``unknown``: the file's fields not read, its reviews' included."""
    if not isinstance(review, dict):
        return _not_a_review(at, i, review, PEERREAD_REVIEW)
    if review.get("IS_META_REVIEW") or review.get("is_meta_review"):
        return None  # the area chair's decision, not a reviewer's review
    if review.get("RECOMMENDATION") in (None, ""):
        typo = None if "RECOMMENDATION" in review else _misspelt(own, IN_REVIEWS + "RECOMMENDATION")
        if typo:
            return _misspelt_error(at, f"reviews[{i}].RECOMMENDATION", typo, "the review would be left out as an "
                                   "author reply or comment", "the review", unknown)
        return None  # author replies and public comments carry no recommendation
    item = {"id": f"{paper_id}#{i}", "_paper_id": paper_id, "paper": text, "title": title,
            "rating": _number(review["RECOMMENDATION"]), "source": "peerread", "_unknown": unknown,
            "_labels": {"review": f"field 'reviews[{i}].comments'", "rating": f"field 'reviews[{i}].RECOMMENDATION'"},
            "_line_form": PEERREAD_REVIEW, "_unit": "PeerRead review", "_remove": "that review"}
    if "comments" in review:  # absent stays absent: "missing field", with the fields not read named
        item["review"] = review["comments"]
    return item


def _peerread(path: Path, mapping: dict[str, str], need_review: bool, says: Spelling = FIT):
    reviews_dir, pdfs_dir = path / "reviews", path / "parsed_pdfs"
    if not reviews_dir.is_dir():
        raise DataFileNotFound(f"{path}: a PeerRead directory holds reviews/<id>.json and parsed_pdfs/<id>.pdf.json")
    for review_file in sorted(reviews_dir.glob("*.json")):
        where = str(review_file)
        paper = _json_file(review_file)
        if not isinstance(paper, dict):
            yield where, paper if isinstance(paper, RecordError) else RecordError(
                f"{where}: expected a JSON object", "not_an_object")
            continue
        pdf_file = pdfs_dir / f"{review_file.stem}.pdf.json"
        if not pdf_file.is_file():
            yield where, RecordError(f"{where}: no parsed paper {pdf_file}", "missing_parsed_pdf")
            continue
        parsed = _json_file(pdf_file)
        if not isinstance(parsed, dict):
            yield where, parsed if isinstance(parsed, RecordError) else RecordError(
                f"{pdf_file}: expected a JSON object", "not_an_object")
            continue
        text = _science_parse_text(parsed)
        try:
            paper_id = record_id(paper, where) or review_file.stem
        except RecordError as exc:
            yield where, exc
            continue
        unknown = _peerread_unknown(paper, where)
        typo = None if "reviews" in paper else _misspelt(unknown, "reviews")
        if typo:
            yield where, _misspelt_error(where, "reviews", typo, "none of its reviews would be read", "the file",
                                         unknown)
            continue
        reviews = paper.get("reviews", [])
        if not isinstance(reviews, list):
            yield where, RecordError(f"{where}: field 'reviews' must be a list of reviews ({PEERREAD_REVIEW} each), "
                                     f"got {_json_kind(reviews)}; fix or remove the file", "no_reviews")
            reviews = []
        own = [_peerread_unknown(review, f"{where} review {i}", IN_REVIEWS) if isinstance(review, dict) else {}
               for i, review in enumerate(reviews)]
        for fields in own:  # every review's, whether it gives a record or not (a meta-review, an author reply)
            for name, first in fields.items():
                unknown.setdefault(name, first)
        for i, review in enumerate(reviews):
            item = _peerread_review(review, f"{where} review {i}", i, paper_id, paper.get("title"), text, unknown,
                                    own[i])
            if item is not None:
                yield f"{where} review {i}", item
        if unknown:  # reported even where no review gives a record
            yield where, FieldsNotRead(unknown)


def _json_file(path: Path):
    """The JSON document of ``path``, or the RecordError naming where it is not UTF-8 or not JSON."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return RecordError(f"{path}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); "
                           "save the file as UTF-8", "not_utf8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return RecordError(f"{path}:{exc.lineno}: not valid JSON ({json_error(exc)})", "invalid_json")
    except ValueError:
        return RecordError(too_many_digits(str(path)), "invalid_json")


def _science_parse_text(parsed: dict) -> str:
    """Title, abstract and sections (heading + text) of a science-parse output, joined."""
    meta = parsed.get("metadata", parsed)
    parts = [meta.get("title") or "", meta.get("abstractText") or ""]
    for section in meta.get("sections") or []:
        parts.append("\n".join(x for x in (section.get("heading"), section.get("text")) if x))
    return "\n\n".join(p for p in parts if p and p.strip())


def check_column_mapping(mapping: dict[str, str] | None, prefix: str = "data.") -> None:
    """A UserError unless every key of ``mapping`` is one of our FIELDS; ``prefix`` spells the setting as the
    command does (Spelling)."""
    unknown = set(mapping or {}) - set(FIELDS)
    if unknown:
        raise UserError(f"{prefix}column_mapping keys must be among {FIELDS} (our field: your column), got "
                        f"{sorted(unknown)}")


def _mapped(row: dict, mapping: dict[str, str], where: str, need_review: bool = True,
            says: Spelling = FIT) -> dict | RecordError:
    columns = {name: mapping.get(name, name) for name in FIELDS}
    if not need_review and "paper" not in mapping:
        try:
            columns["paper"] = document_field(row, where)  # a document's column: paper or text
        except RecordError as exc:
            return exc
    for required in ("paper", "review") if need_review else ("paper",):
        if columns[required] not in row:
            setting = says("column_mapping")
            fix = (f'name your column with {setting} {{"{required}": "<your column>"}}' if setting else
                   f"rename the column that holds the {required} to {required!r}")
            return RecordError(f"{where}: no column {columns[required]!r} for {required!r}; {fix}",
                               f"missing_{required}")
    out = {name: row.get(column) for name, column in columns.items() if column in row}
    out["rating"] = _number(out.get("rating"))
    out["_labels"] = {name: f"column {column!r} ({says.prefix}column_mapping's {name!r})"
                      for name, column in columns.items() if column != name}
    return out


def _json_array(path: Path, mapping: dict[str, str], need_review: bool, says: Spelling = FIT):
    # Bytes that are not UTF-8 become lone surrogates, so that they cost the one object holding them (named below),
    # not the file; a file that is not one JSON document stops the read under either policy.
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig", errors="surrogateescape"))
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.msg == "Extra data" and _first_lines(path, 1)[0].startswith("{"):
            hint = f"; the file looks like JSON lines (one object a line): {_as_json_lines(path, says)}"
        raise RecordError(f"{path}:{exc.lineno}: not valid JSON ({json_error(exc)}); expected a JSON "
                          f"array of objects{hint}", "invalid_json") from None
    except ValueError:
        raise RecordError(too_many_digits(str(path)), "invalid_json") from None
    if not isinstance(data, list):
        hint = (f" (for JSON lines, one object a line, {_as_json_lines(path, says)})"
                if isinstance(data, dict) else "")
        raise RecordError(f"{path}: expected a JSON array of objects, got {_json_kind(data)}{hint}",
                          "not_an_array")
    known = fields_read("json", mapping, need_review)
    for i, row in enumerate(data):
        where = f"{path}[{i}]"
        if not isinstance(row, dict):
            yield where, RecordError(f"{where}: expected an object", "not_an_object")
            continue
        item = _not_utf8(row, where) or _mapped(row, mapping, where, need_review, says)
        _give_unknown(item, _unknown(row, known, where))
        yield where, item


def _as_json_lines(path: Path, says: Spelling) -> str:
    """How to have a JSON file read as JSON lines: the data format setting, or a name auto reads so (.jsonl)."""
    setting = says("data_format")
    return f"set {setting} {_json_lines_format(path)}" if setting else "rename the file to .jsonl"


def _csv(path: Path, mapping: dict[str, str], need_review: bool, says: Spelling = FIT):
    csv.field_size_limit(1 << 30)  # papers are long
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
        reader = csv.DictReader(f)
        end = 1  # the header's last line
        unknown = None
        for row in reader:
            where = f"{path}:{end + 1}"  # where the row starts: a quoted paper may span many lines
            end = reader.line_num
            if unknown is None:  # the header's columns, once: every row has them
                unknown = _unknown(dict.fromkeys(reader.fieldnames), fields_read("csv", mapping, need_review),
                                   f"{path}:1")
            item = _columns_counted(row, reader.fieldnames, where) or _not_utf8(row, where) or \
                _mapped(row, mapping, where, need_review, says)
            _give_unknown(item, unknown)
            yield where, item


def _give_unknown(item: dict | RecordError, unknown: dict[str, NotRead]) -> None:
    """Attach a row's fields not read to what its reader yields, a record or its error (read_records reports them)."""
    if isinstance(item, dict):
        item["_unknown"] = unknown
    else:
        item.unknown = unknown


def _columns_counted(row: dict, header: list[str], where: str) -> RecordError | None:
    """The RecordError of a CSV row with more or fewer values than the header has columns: DictReader files the
    extra values under None and fills the missing with None, so the row's text would be read shifted or cut (an
    unquoted comma, an unclosed quote that swallows the lines after it)."""
    extra = row.get(None) or []
    missing = sum(value is None for key, value in row.items() if key is not None)
    if not extra and not missing:
        return None
    count = len(header) + len(extra) - missing
    return RecordError(f"{where}: {count} values where the header has {len(header)} columns; a value holding a "
                       'comma, a quote or a line break must be quoted ("..." with "" for a quote inside), and every '
                       "quote closed; fix the row", "column_count")


def _not_utf8(row: dict, where: str) -> RecordError | None:
    """The RecordError of a row read with ``surrogateescape`` that holds bytes that are not UTF-8."""
    for column, value in row.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                code = ord(value[exc.start])
                if not 0xDC80 <= code <= 0xDCFF:  # a JSON escape \ud800-\udfff alone, not a byte read
                    return RecordError(unpaired_surrogate(f"{where}: column {column!r}", chr(code)), "surrogate")
                return RecordError(f"{where}: column {column!r} is not UTF-8 (byte 0x{code - 0xDC00:02x}); save the "
                                   "file as UTF-8, or fix or remove the row", "not_utf8")
    return None


def _number(value):
    """A rating as the data gives it: a number, or a string starting with one (OpenReview's ``"6: Marginally
    above acceptance threshold"``); a blank string is none. Anything else is returned as it is, for
    record_from_fields to refuse naming the record (not dropped as if the record had no rating)."""
    if value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and not value.strip():
        return None
    try:
        return float(str(value).split(":")[0].strip())
    except ValueError:
        return value


# Every reader takes (path, mapping, need_review, says): the mapping is read by json and csv only, need_review by the
# readers whose form differs without reviews (jsonl's and peerread's does not), says (how the command names its
# settings) by those whose messages name the column mapping or the data format (json, csv).
READERS = {"jsonl": _jsonl, "chat": _chat, "paper_reviews": _paper_reviews, "peerread": _peerread,
           "json": _json_array, "csv": _csv}


def _json_kind(value) -> str:
    """What a JSON value is, in JSON's words."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")
