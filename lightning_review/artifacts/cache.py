"""The cache directory of built-in assets, converted models and tokenized data."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$LIGHTNING_REVIEW_CACHE``, default ``~/.cache/lightning_review``."""
    return Path(os.environ.get("LIGHTNING_REVIEW_CACHE", Path.home() / ".cache" / "lightning_review"))
