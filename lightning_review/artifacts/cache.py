"""The cache directory of built-in assets, converted models and tokenized data."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError
from ..safe_paths import file_in_the_way

CACHE_VARIABLE = "LIGHTNING_REVIEW_CACHE"


def cache_dir() -> Path:
    """``$LIGHTNING_REVIEW_CACHE`` (an empty value counts as unset), default ``~/.cache/lightning_review``. A value
    that is a file, or lies under one, is refused naming the variable: the first write into it would be an OS
    error naming neither."""
    given = os.environ.get(CACHE_VARIABLE) or None
    path = Path(given).expanduser() if given else Path.home() / ".cache" / "lightning_review"
    place = file_in_the_way(path)
    if place is not None:
        where = f"{CACHE_VARIABLE}={given}" if given else f"the default cache directory {path}"
        raise UserError(f"{where}: {place} is a file, not a directory; point {CACHE_VARIABLE} at a directory (it is "
                        "made if missing)")
    return path
