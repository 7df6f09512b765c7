"""Secrets read from the environment, replaced by their names in text that is shown or recorded.

Why one place: the OpenAI key (openai_client.redact_keys) and the OpenReview credentials (collect's login refusal)
can both come back in a server's or a proxy's words, written as they were sent: plain, percent-encoded in an address,
or escaped in a JSON body."""

from __future__ import annotations

import json
import os
from urllib.parse import quote


def redact_environment_values(text: str, names: tuple[str, ...], min_length: int = 1) -> str:
    """``text`` with the current value of each environment variable of ``names`` replaced by ``<NAME>``: as written,
    percent-encoded (as in a URL) and JSON-escaped (as in a request body), the longest first, so that a value that
    contains another (a password built on the account name) is still replaced whole. A variable unset, blank, or
    shorter than ``min_length`` after stripping blanks redacts nothing."""
    forms: dict[str, str] = {}
    for name in names:
        value = os.environ.get(name, "").strip()
        if value and len(value) >= min_length:
            for form in (value, quote(value, safe=""), quote(value), json.dumps(value)[1:-1],
                         json.dumps(value, ensure_ascii=False)[1:-1]):
                forms.setdefault(form, name)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, f"<{forms[form]}>")
    return text
