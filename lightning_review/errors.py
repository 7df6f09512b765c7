"""The one exception type for a user's mistake (bad input, a refused request): the command line prints its message
as one line and exits non-zero; anything else is our bug and keeps its traceback."""

from __future__ import annotations


class UserError(ValueError):
    """A mistake the user can fix: the message says what, where (file:line, path or flag) and what to do."""


def json_error(exc, line: bool = False) -> str:
    """json's message for a ``json.JSONDecodeError`` with the place (``line``: its line too): json's own text of
    some errors ends in "at" ("Invalid control character at"), dropped so that "at" is said once."""
    place = f"line {exc.lineno}, column {exc.colno}" if line else f"column {exc.colno}"
    return f"{exc.msg.removesuffix(' at')} at {place}"
