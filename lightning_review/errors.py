"""The one exception type for a user's mistake (bad input, a refused request): the command line prints its message
as one line and exits non-zero; anything else is our bug and keeps its traceback."""

from __future__ import annotations


class UserError(ValueError):
    """A mistake the user can fix: the message says what, where (file:line, path or flag) and what to do."""
