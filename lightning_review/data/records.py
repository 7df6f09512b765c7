"""Paper->review records and the JSONL reader that validates them.

Bad input never disappears silently: a malformed line, a missing field or an empty review raises
``RecordError`` naming the file, the line, the field and the fix. The text task (plain long text for context
extension) reads documents without reviews: ``record_from_fields(..., need_review=False)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from ..errors import UserError, json_error


class DataFileNotFound(UserError, FileNotFoundError):
    """A data file or directory that is not there: a user's mistake (the command line prints it as one line, in fit
    as in the tool commands) and a FileNotFoundError for callers that catch those."""


class RecordError(UserError):
    """Bad input record: the message names the file, the line and the fix; ``reason`` is a short category
    (for counting under the ``skip`` policy)."""

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Record:
    """One paper with one review: the unit every reader produces. A document read for the text task may have no
    review (``review == ""``); ``extra`` carries what a format adds (a chat line's own ``system_prompt``)."""

    id: str
    paper: str
    review: str
    title: str | None = None
    rating: float | None = None
    source: str | None = None
    extra: dict = field(default_factory=dict, compare=False, repr=False)
    paper_id: str | None = None  # the paper's id as the data gives it (``id`` up to a ``#``); None when it has none
    where: str | None = field(default=None, compare=False, repr=False)  # file:line it was read from

    @property
    def paper_key(self) -> str:
        """Identity of the paper: its id, or its whitespace-normalised text where the data gives no id
        (lightning_review.data.papers groups records sharing either, for splits and counts)."""
        return f"id:{self.paper_id}" if self.paper_id is not None else f"text:{text_key(self.paper)}"


def normalise_whitespace(text: str) -> str:
    """Runs of whitespace as one space, none at the ends."""
    return " ".join(text.split())


def text_key(text: str) -> str:
    """A short hash of the whitespace-normalised text: a paper's identity where the data gives it no id."""
    return hashlib.sha1(normalise_whitespace(text).encode("utf-8")).hexdigest()[:16]


def paper_id_of(record_id: str) -> str:
    """The paper a record id names: the id up to a ``#`` (``paper#2`` is the second review of ``paper``)."""
    return str(record_id).split("#")[0]


# What a line of paper->review data holds, as the messages about a missing field show it.
REVIEW_LINE = '{"paper": "...", "review": "..."}'


def text_field(obj: dict, name: str, where: str, line_form: str = REVIEW_LINE, label: str | None = None,
               remove: str = "the line", unit: str = "line") -> str:
    """A required non-empty text field of a record, or a RecordError naming ``where``, the field and the fix;
    ``line_form`` shows what each ``unit`` of the data needs (each line of paper->review data by default; each
    ``PeerRead review`` of a PeerRead file, which has no lines). ``label`` is the field as
    the user's file names it where a reader renamed it (``field 'reviews[2].text'``, ``column 'critique'``;
    default ``field '<name>'``), ``remove`` what to remove instead of fixing it (a review of a paper_reviews line,
    not the whole line)."""
    what = label or f"field {name!r}"
    if name not in obj:
        raise RecordError(f"{where}: missing {what} (each {unit} needs {line_form}); add it or remove {remove}",
                          f"missing_{name}")
    value = obj[name]
    if not isinstance(value, str):
        raise RecordError(f"{where}: {what} must be a string, got {type(value).__name__}", f"non_text_{name}")
    if not value.strip():
        raise RecordError(f"{where}: {what} is empty; give it text or remove {remove}", f"empty_{name}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON's "\ud800" escape alone: no character, and no tokenizer takes it
        raise RecordError(unpaired_surrogate(f"{where}: {what}", value[exc.start],
                                             f" at character {exc.start + 1}"), f"surrogate_{name}") from None
    return value


def record_id(obj: dict, where: str, label: str = "field 'id'", optional: bool = True) -> str | None:
    """The id a record gives, as a string, or None where it gives none (no ``id`` field, or a blank string).

    An id is a string. A whole number (``"id": 12``) is taken as its digits (``"12"``): one spelling, so the same
    paper as ``"id": "12"``. Anything else is a RecordError naming ``where``, the field and the fix, not converted:
    a float (``12.0`` would be ``"12.0"``, another paper than ``12``, and a long number a rounded one), ``true`` /
    ``false``, ``null`` (``"None"``, or no id, would be a guess: leave the field out for no id), a list or an
    object. The bad-record policy applies to it as to any other record error (reason ``bad_id``). ``optional``
    False: a line that cannot do without an id (a system's review, a paper to split), whose fix is not to leave the
    field out."""
    if "id" not in obj:
        return None
    value = obj["id"]
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    shown = json.dumps(value, ensure_ascii=False)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    kind = {float: " (a float)", bool: " (a boolean)", list: " (a list)", dict: " (an object)"}.get(type(value), "")
    whole = isinstance(value, float) and value.is_integer() and abs(value) < 1e15
    quoted = f'; write it as a string ("id": "{int(value)}")' if whole else ""
    left_out = ", or leave the field out for no id" if optional else ""
    raise RecordError(f"{where}: {label} is {shown}{kind}; an id must be a string (or a whole number, read as "
                      f"its digits){quoted}{left_out}", "bad_id")


def default_record_id(path: Path, where: str) -> str:
    """The id of a line that gives none, from its file's stem and its line number (``where`` is ``file:line``):
    unique within the file and the same on every read, so a rerun names the same records."""
    return f"{path.stem}-{where.rsplit(':', 1)[1]}"


def unpaired_surrogate(what: str, character: str, place: str = "") -> str:
    """The message for text holding half a surrogate pair (``what``: where and which field or column)."""
    return (f"{what} holds an unpaired surrogate {character!r}{place} (a JSON escape \\ud800-\\udfff without its "
            "pair, as a cut emoji leaves); fix or remove it")


def too_many_digits(where: str) -> str:
    """The message for the one refusal of ``json.loads`` besides invalid JSON: an integer longer than Python
    converts (a ValueError naming ``sys.set_int_max_str_digits``, no fix for data)."""
    return (f"{where}: a number of more than {sys.get_int_max_str_digits()} digits, too long to read; fix or remove "
            "it")


def iter_json_lines(path: str | Path) -> Iterator[tuple[str, dict | RecordError]]:
    """("file:line", object or the RecordError that line raises) for every non-blank line of a JSONL file, so a
    caller can stop at a bad line or skip it."""
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFound(f"{path}: no such data file (expected JSONL, one JSON object a line)")
    with path.open("rb") as f:  # decoded line by line, so one bad byte costs one line, named
        for lineno, raw in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield where, RecordError(f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of "
                                         "the line); save the file as UTF-8, or fix or remove the line", "not_utf8")
                continue
            if lineno == 1:
                line = line.removeprefix("\ufeff")  # a UTF-8 byte order mark
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield where, RecordError(f"{where}: not valid JSON ({json_error(exc)}); "
                                         "each line must be one JSON object", "invalid_json")
                continue
            except ValueError:
                yield where, RecordError(too_many_digits(where), "invalid_json")
                continue
            if not isinstance(obj, dict):
                obj = RecordError(f"{where}: expected a JSON object, got {type(obj).__name__}", "not_an_object")
            yield where, obj


def iter_json_objects(path: str | Path) -> Iterator[tuple[str, dict]]:
    """("file:line", object) for every non-blank line of a JSONL file; a bad line raises RecordError naming it."""
    for where, obj in iter_json_lines(path):
        if isinstance(obj, RecordError):
            raise obj
        yield where, obj


# What a line of papers to review holds (generate, predict): no review.
PAPER_LINE = '{"id": "...", "paper": "..."}'


def read_papers(path: str | Path) -> Iterator[tuple[str, str]]:
    """(id, paper text) of a JSONL of papers to review (``paper`` required, ``id`` optional: record_id)."""
    path = Path(path)
    for where, obj in iter_json_objects(path):
        given = record_id(obj, where)
        yield (given if given is not None else default_record_id(path, where),
               text_field(obj, "paper", where, PAPER_LINE))


# A review rating is a score on a small scale (1-10, 1-5, at most 0-100): a larger one is a data error (a value
# pasted into the wrong column, 1e308), and it would be a training target no model should learn to write.
RATING_LIMIT = 1000


def check_rating(rating, where: str, name: str = "rating", label: str | None = None):
    """``rating`` when it is a finite number within +-RATING_LIMIT, or None; else a RecordError naming ``where``, the
    field, the value and the fix. JSON's ``true``/``false`` are no ratings (Python counts them as 1 and 0), nor are
    ``NaN`` and ``Infinity`` (which Python's json module reads), which would become a ``Rating: nan`` line no parser
    reads back, nor a number no review scale has (``1e308``). ``label``: the field as the user's file names it, where
    a reader renamed it (``field 'reviews[2].rating'``)."""
    if rating is None:
        return None
    what = label or f"field {name!r}"
    fix = "give a number on the review scale (e.g. 1-10) or null; or fix or remove the line"
    # an int is always finite (math.isfinite would overflow on one beyond float's range)
    if isinstance(rating, bool) or not isinstance(rating, (int, float)) or (isinstance(rating, float)
                                                                            and not math.isfinite(rating)):
        raise RecordError(f"{where}: {what} must be a finite number or null, got {rating!r}; {fix}",
                          f"bad_{name}")
    if not -RATING_LIMIT <= rating <= RATING_LIMIT:
        raise RecordError(f"{where}: {what} is {rating!r}, not a review rating (a rating is a score on a "
                          f"small scale, between -{RATING_LIMIT} and {RATING_LIMIT}); {fix}", f"bad_{name}")
    return rating


# The fields a text-task line may hold its document in: ``paper`` as in review data, or ``text`` as in the usual
# plain-text corpora (one document a line).
DOCUMENT_FIELDS = ("paper", "text")


def document_field(obj: dict, where: str) -> str:
    """The field holding a text-task document (one of DOCUMENT_FIELDS), or a RecordError naming ``where`` when the
    record has neither, or both (which one is the document cannot be told)."""
    present = [name for name in DOCUMENT_FIELDS if name in obj]
    if len(present) == 1:
        return present[0]
    if present:
        raise RecordError(f"{where}: both 'paper' and 'text': the text task reads one document a line and cannot "
                          "tell which is the document; keep one of the two fields (JSON/CSV: or name the "
                          'document\'s column with data.column_mapping {"paper": "<column>"})', "paper_and_text")
    raise RecordError(f"{where}: no document: the text task reads the field 'paper' or 'text' of each line "
                      '(e.g. {"text": "..."}; a review is not needed); add one or remove the line (JSON/CSV: or '
                      'name the document\'s column with data.column_mapping {"paper": "<column>"})', "missing_paper")


def record_from_fields(obj: dict, where: str, default_id: str, source: str, need_review: bool = True) -> Record:
    """A validated Record from a dict with ``paper`` and ``review`` (optional ``id``, ``title``, ``rating``).

    The paper id is the given ``id`` up to a ``#`` (``paper#2`` is a review of ``paper``), or ``_paper_id`` where a
    reader knows it; None where the data gives none (``default_id`` is made up, so it identifies no paper).

    Without ``need_review`` (the text task, which trains on the documents alone), the document is ``paper`` or
    ``text`` (document_field) and the review and rating are not read: a review given as text is kept (so that a
    paper's several reviews stay several records, not duplicates), anything else becomes ``""``; the rating None.
    A chat line's own system message (``_system_prompt``) goes to ``extra["system_prompt"]``. The id is checked by
    record_id (a string, or a whole number read as its digits). A reader that renames the user's fields gives
    ``_labels`` {our field: the user's field, as a message names it} so that an error names the user's field
    (``field 'reviews[2].text'``), ``_line_form`` what its lines hold (``_unit``: what holds it where that is no
    line, ``PeerRead review``) and ``_remove`` what to remove instead of fixing a bad review."""
    labels = obj.get("_labels", {})
    given = record_id(obj, where, labels.get("id", "field 'id'"))
    paper_id = obj["_paper_id"] if "_paper_id" in obj else (paper_id_of(given) if given is not None else None)
    if need_review:
        rating = check_rating(obj.get("rating"), where, label=labels.get("rating"))
        if "paper" not in obj and "text" in obj:
            raise RecordError(f"{where}: missing field 'paper' (each line needs {{\"paper\": \"...\", \"review\": "
                              "\"...\"}); plain text without a review ({\"text\": ...}) is read by the text task "
                              "only (data.task text)", "missing_paper")
        line_form, unit = obj.get("_line_form", REVIEW_LINE), obj.get("_unit", "line")
        paper = text_field(obj, "paper", where, line_form, labels.get("paper"), unit=unit)
        review = text_field(obj, "review", where, line_form, labels.get("review"), obj.get("_remove", "the line"),
                            unit)
    else:
        name = document_field(obj, where)
        paper = text_field(obj, name, where, label=labels.get(name))
        review, rating = obj.get("review") if isinstance(obj.get("review"), str) else "", None
    extra = {"system_prompt": obj["_system_prompt"]} if obj.get("_system_prompt") is not None else {}
    return Record(id=given if given is not None else default_id, paper=paper, review=review, title=obj.get("title"),
                  rating=rating, source=obj.get("source") or source,
                  paper_id=None if paper_id is None else str(paper_id), where=where, extra=extra)


def read_jsonl(path: str | Path) -> Iterator[Record]:
    """Records of a JSONL file with at least ``paper`` and ``review``; optional ``id``, ``title``, ``rating``.
    Strict: the first bad line raises RecordError (lightning_review.data.readers has the other formats and the
    ``skip`` policy)."""
    path = Path(path)
    for where, obj in iter_json_objects(path):
        yield record_from_fields(obj, where, default_record_id(path, where), str(path))
