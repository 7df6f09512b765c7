"""The rating line: one fixed last line of the training target that states the reviewer's rating, ``Rating: 7``.

Why: a rating is the one part of a review that can be checked without any judge. When the data has ratings, the
model learns to end its review with this line, ``generate`` reads it back into its output (``rating``), and
``evaluate`` compares it with the human ratings (lightning_review.evaluate.ratings).

One rule for every path that turns a record into a target (the tokenize cache, the DataModule's checks, the OpenAI
chat export): ``training_target``; an API model, which never saw those targets, is asked for the same line in the
same words (``rating_request``). One rule for reading it back: ``parse_rating``, which takes the last line of the
text that is exactly ``Rating: <number>`` (optionally ``/ 10``; case, surrounding ``*`` of Markdown bold and spaces
ignored; OpenReview's ``Rating: 6: Marginally above acceptance threshold`` too). Anything else (``Rating: 4/5``, ``rating seven``, a number inside a sentence) is no rating: None, counted
by the evaluator as unparsable rather than guessed. The number is written as the data gives it on its own scale;
the line names no scale, so the same rule serves 1-10 (ICLR) and 1-5 (ACL) data.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Sequence

from ..errors import UserError
from .records import Record

PREFIX = "Rating:"
_LINE = re.compile(r"^\s*\**\s*rating\s*\**\s*:\s*\**\s*(-?\d+(?:\.\d+)?)\s*(/\s*10(?:\.0+)?)?\s*\**\s*(?::\s*\D.*)?$",
                   re.IGNORECASE)


def format_rating(rating: float) -> str:
    """``Rating: 7`` (an integral rating without decimals, ``Rating: 6.5`` otherwise), in digits that
    ``parse_rating`` reads back as the same number (never an exponent, never rounded: ``:g`` wrote 12345678 as
    ``1.23457e+07``)."""
    return f"{PREFIX} {plain_number(rating)}"


def plain_number(number: float) -> str:
    """The shortest decimal digits that read back as the same float, without an exponent: 7, 6.5, 0.00001."""
    text = format(Decimal(repr(float(number))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def training_target(record: Record, rating_line: bool, prefix: str = "data.") -> str:
    """The text the model learns to write for ``record``: its review, and with ``rating_line`` a blank line and
    ``Rating: <its rating>`` after it. A record without a rating under ``rating_line`` is refused, naming it and the
    setting as the command the user ran spells it: ``prefix`` ``data.`` for fit's ``data.rating_line``, ``--`` for a
    tool's flag (prepare's, openai export's ``--rating_line``)."""
    if not rating_line:
        return record.review
    if record.rating is None:
        setting = f"{prefix}rating_line"
        raise UserError(f"{record.where or record.id}: no rating, but {setting} is on (the target ends with the "
                        f"reviewer's rating); give the record a 'rating', or set {setting} false")
    return f"{record.review.rstrip()}\n\n{format_rating(record.rating)}"


def rating_request(low: float = 1, high: float = 10) -> str:
    """The instruction that asks a model which never saw the training targets (an API model, GPT-4) to end its
    review as ``training_target`` ends one: a blank line, then ``Rating: <n>`` in ``format_rating``'s words, read back
    by ``parse_rating``. Training's prompt never carries it (a trained model learnt the line from its targets); API
    generation adds it to the system message."""
    if not low < high:
        raise UserError(f"a rating scale runs from a lower to a higher number, got {plain_number(low)} to "
                        f"{plain_number(high)}")
    return (f"End the review with a blank line and then one last line that states your overall rating of the paper "
            f"as a number from {plain_number(low)} (the lowest) to {plain_number(high)} (the highest), written "
            "exactly as "
            f'"{PREFIX} <number>", with nothing after it.')


def parse_rating(text: str) -> float | None:
    """The rating stated by the last ``Rating: <number>`` line of ``text``; None when no line states one."""
    for line in reversed(text.splitlines()):
        match = _LINE.match(line)
        if match:
            rating = float(match.group(1))
            if match.group(2) and not 0 <= rating <= 10:
                return None  # "Rating: 11/10" or "-1/10" states no rating on the scale it names
            return rating
    return None


def resolve_rating_line(setting: bool | None, records: Sequence[Record], source: str,
                        prefix: str = "data.") -> bool:
    """The rating-line setting for these records: ``None`` (the default) turns it on when every record has a
    rating and off when none has; data where only some have one is refused (a model trained on both would end its
    reviews with a rating only sometimes), naming a record without and the two ways out, with the setting spelt as
    the command the user ran spells it (``prefix``: as ``training_target``'s)."""
    if setting is not None:
        if setting:
            for record in records:
                training_target(record, True, prefix)  # names the first record without a rating
        return bool(setting)
    missing = [r for r in records if r.rating is None]
    if not missing:
        return bool(records)
    if len(missing) == len(records):
        return False
    name = f"{prefix}rating_line"
    raise UserError(f"{source}: {len(missing)} of {len(records)} records have no rating (e.g. "
                    f"{missing[0].where or missing[0].id}), the others do; set {name} false to train without the "
                    f"rating line, or give every record a rating ({name} true then checks it)")
