"""The one exception type for a user's mistake (bad input, a refused request): the command line prints its message
as one line and exits non-zero; anything else is our bug and keeps its traceback."""

from __future__ import annotations

import math


class UserError(ValueError):
    """A mistake the user can fix: the message says what, where (file:line, path or flag) and what to do."""


def json_error(exc, line: bool = False) -> str:
    """json's message for a ``json.JSONDecodeError`` with the place (``line``: its line too): json's own text of
    some errors ends in "at" ("Invalid control character at"), dropped so that "at" is said once."""
    place = f"line {exc.lineno}, column {exc.colno}" if line else f"column {exc.colno}"
    return f"{exc.msg.removesuffix(' at')} at {place}"


def finite_number(value) -> bool:
    """An int or float, not a bool (True is 1 to Python), and not NaN or infinite (which every range check lets
    through): the test every numeric setting's check starts from."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def count_problem(flag: str, value, least: int, what: str) -> str | None:
    """Why ``value`` cannot be the count ``flag`` asks for (a whole number, not a bool, at least ``least``; ``what``
    says what it counts, with an example), or None: the one wording every command's count checks share."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        return f"{flag} must be a whole number of {least} or more ({what}), got {value!r}"
    return None
