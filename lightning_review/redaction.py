"""Secrets read from the environment, replaced by their names in text that is shown or recorded.

Why one place: the OpenAI key (openai_client.redact_keys) and the OpenReview credentials (collect's login refusal)
can both come back in a server's or a proxy's words, written as they were sent: plain, percent-encoded in an address,
or escaped in a JSON body."""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote

# the user name and password of an address in free text (an error's words, a command line): after "//", or at the
# start of a word without a scheme ("user:key@host", which urllib reads as the scheme "user"); emails, which have no
# ":" before their "@", are left alone, and so is evaluate's judge spec "openai:<model>@<address>" (its model is no
# password), whose address's own credentials still go ("openai:m@user:key@host" becomes "openai:m@host"). Up to the
# last "@" before the host, as urllib splits it: a password written with a raw "@" ("u:p@ss@host") goes whole, not
# only up to its own "@"; after "//" with or without a host after it ("http://u:key@" names no host, and still a key).
# Neither is a Windows path's drive ("C:\\Users\\me@corp\\x": a backslash is no character of a user name or
# password, RFC 3986) nor a mailto: address ("mailto:john@example.com": no password either)
# A password written with a raw "/", "?" or "#" ("http://u:pa/ss@host", which urllib cannot split either) goes to the
# word's last "@" when a ":" after "//" is followed by no port number (public_url hides such an address whole)
AFTER_SLASHES = re.compile(r"(?<=//)(?:[^\s/?#@\[:]*:(?![0-9]*(?:[/?#\s]|$))[^\s/?#@]*[/?#][^\s@]*@|[^\s/?#]*@)")
SCHEMELESS = re.compile(r"""(?<![^\s'"(<\[=,@])(?!openai:|(?i:mailto):|[A-Za-z]:\\)"""
                        r"""[^\s/?#@'"<>()\[\]:=]+:[^\s/?#'"<>()\[\]]+@"""
                        r"(?=[A-Za-z0-9\[])(?![A-Za-z][A-Za-z0-9+.-]*://)")


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


def redact_userinfo(text: str) -> str:
    """``text`` without the user name and password of any address in it (``http://user:key@host`` becomes
    ``http://host``, ``user:key@host`` becomes ``host``): an error's words or a command line can echo an address as it
    was given, and no environment variable holds that password for ``redact_environment_values`` to find."""
    return SCHEMELESS.sub("", AFTER_SLASHES.sub("", text))
