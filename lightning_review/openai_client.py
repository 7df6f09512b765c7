"""The asynchronous OpenAI client that the chat judges and the API generation backend share the making of."""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import time
from urllib.parse import SplitResult, urlsplit, urlunsplit

from .errors import UserError, finite_number
from .redaction import redact_environment_values, redact_userinfo

OPENAI_ENDPOINT = "https://api.openai.com/v1"  # the openai client's default address
KEY_VARIABLES = ("OPENAI_API_KEY",)  # the secrets this module (the openai client) reads from the environment
# A key shorter than this is not searched for: replacing e.g. "v1" or "test" would mangle ordinary addresses and
# words. 8 characters is below any real API key (OpenAI's are over 40) yet above common path segments and words.
MIN_REDACTED_KEY_LENGTH = 8
TIMEOUT_FLAG = "--timeout_s"  # generate's and evaluate's seconds per API request (as collect's --timeout_s)


def redact_keys(text) -> str:
    """``text`` with every occurrence of the current value of each of KEY_VARIABLES (as written, percent-encoded as
    it would be in a URL, or JSON-escaped) replaced by ``<NAME>``: for anything recorded or shown that may carry a
    key, such as an address with the key in its path (``https://proxy.example/v1/sk-.../``, as some proxies want).
    A variable unset, blank, or shorter than MIN_REDACTED_KEY_LENGTH (after stripping blanks) redacts nothing.
    Deterministic for a given environment: two runs with the same key and address give the same text. The user name
    and password of any address in ``text`` go too (``redact_userinfo``): no variable holds them to be searched for."""
    return redact_environment_values(redact_userinfo(str(text)), KEY_VARIABLES, MIN_REDACTED_KEY_LENGTH)


def default_endpoint() -> str:
    """Where a client made without a ``base_url`` sends its calls: OPENAI_BASE_URL, else OpenAI's (as the openai
    client chooses)."""
    return os.environ.get("OPENAI_BASE_URL") or OPENAI_ENDPOINT


HIDDEN_ADDRESS = "<address hidden>"  # public_url's answer for an address it cannot split safely
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # an address that starts with its scheme (RFC 3986's letters)


def unsplittable(parts: SplitResult) -> bool:
    """Whether where the user name and password end cannot be told: an ``@`` after the host (a password holding
    ``/``, ``?`` or ``#`` ends the host early: ``http://u:pa/ss@host``), a port that is no number (``host:password``)
    or a blank or control character in the host part."""
    try:
        parts.port
    except ValueError:
        return True
    return "@" in parts.path + parts.query + parts.fragment or any(
        character.isspace() or not character.isprintable() for character in parts.netloc)


def public_url(url) -> str:
    """An address fit for a message or a record, whatever the string: without a user name, password, query,
    fragment or ``;parameters`` (where keys can hide), and with the API key replaced by its placeholder wherever else
    it appears (its path: ``redact_keys``). An address without its scheme is read as if ``//`` preceded it
    (``user:key@host:8000`` would otherwise read as the scheme ``user``) and shown without one. An address that
    cannot be split safely (``unsplittable``) is HIDDEN_ADDRESS: a guess could show a password."""
    text = str(url).strip()
    scheme_less = SCHEME.match(text) is None
    try:
        parts = urlsplit("//" + text.lstrip("/") if scheme_less else text)
        if unsplittable(parts):
            return HIDDEN_ADDRESS
    except ValueError:  # a broken IPv6 host ("[::1")
        return HIDDEN_ADDRESS
    path = parts.path.split(";", 1)[0].rstrip("/")
    host = parts.netloc.rpartition("@")[2]
    return redact_keys(host + path if scheme_less else urlunsplit((parts.scheme, host, path, "", "")))


def check_base_url(url, name: str = "--base_url") -> None:
    """Refuse an API address without http:// or https://, one that cannot be split safely, or one naming no host,
    before any call: the openai client would retry it with backoff (seconds of waiting) and then fail with a message
    that does not say why, and its address could not be shown nor recorded. ``name``: what set it (a flag,
    OPENAI_BASE_URL, a judge spec), for the message; the address is shown without credentials. The one check of every place that takes the
    address of an OpenAI-compatible server (generate, evaluate's chat judges, the openai commands, LazyAsyncOpenAI)."""
    if url is None:
        return
    if not str(url).strip().lower().startswith(("http://", "https://")):
        raise UserError(f"{name} must start with http:// or https:// (got {public_url(url)})")
    if public_url(url) == HIDDEN_ADDRESS:
        raise UserError(f"{name} cannot be read as an address (not shown: it may hold a password): write it as "
                        "http(s)://host[:port]/path, with no blank, and with any '/', '?', '#' or '@' in a user name "
                        "or password percent-encoded (%2F, %3F, %23, %40)")
    if not urlsplit(str(url).strip()).hostname:  # the client would retry it, then fail on a DNS lookup of nothing
        raise UserError(f"{name} names no host (got {public_url(url)}): write it as http(s)://host[:port]/path, "
                        "e.g. http://localhost:8000/v1")


def check_api_address(base_url) -> None:
    """``base_url`` (as ``--base_url``) when given, else OPENAI_BASE_URL when set: the address a client would use."""
    if base_url is not None:
        check_base_url(base_url)
    elif os.environ.get("OPENAI_BASE_URL"):
        check_base_url(os.environ["OPENAI_BASE_URL"], "OPENAI_BASE_URL")


def api_key_set() -> bool:
    """Whether OPENAI_API_KEY holds a key (blank counts as unset): its presence only, the key never read out."""
    return bool(os.environ.get("OPENAI_API_KEY", "").strip())


def check_api_key(key: str | None = None) -> None:
    """Refuse a key (``key``, else OPENAI_API_KEY where set) that an HTTP header cannot carry: a non-ASCII character,
    a space or a line break (a key pasted with a smart quote or a newline) would fail inside the HTTP library with an
    encoding error naming nothing, or be misread as a connection error. The key itself is never shown."""
    key = os.environ.get("OPENAI_API_KEY") if key is None else key
    if not key or not key.strip():  # unset or blank: the missing key's own message (require_api_key) says so
        return
    for position, character in enumerate(key, start=1):
        if not 0x21 <= ord(character) <= 0x7E:
            what = ("a line break" if character in "\r\n" else "a space" if character.isspace()
                    else "a control character" if ord(character) < 0x20 else "a non-ASCII character")
            raise UserError(f"OPENAI_API_KEY holds {what} at character {position}, which an HTTP header cannot "
                            "carry; copy the key again without it and export OPENAI_API_KEY=<your key>")


def require_api_key(address: str | None = None) -> None:
    """Refuse, before anything is written or called, a run whose key is missing: the openai client reads it from
    OPENAI_API_KEY (never from a flag) and would only fail at its first call, with its own message. ``address``: how
    the command is pointed at an OpenAI-compatible server instead of OpenAI's (e.g. ``export OPENAI_BASE_URL=...``),
    named in the message where given. The key itself is never shown."""
    if not api_key_set():
        elsewhere = f"; for an OpenAI-compatible server instead of OpenAI's, {address}" if address else ""
        raise UserError("OPENAI_API_KEY is not set: the API's key is read from the environment only (never from a "
                        "flag); export OPENAI_API_KEY=<your key> (any non-empty value for a local server that checks "
                        f"none) and run again{elsewhere}")
    check_api_key()


def unreachable_message(exc) -> str:
    """What an ``openai.APIConnectionError`` (or timeout: then with the flag that gives a slow server more time)
    means, naming the address it tried, never the key."""
    from openai import APITimeoutError

    request = getattr(exc, "request", None)
    where = public_url(request.url) if request is not None else "the API"
    slow = (f", or give a slow server more seconds a request with {TIMEOUT_FLAG}"
            if isinstance(exc, APITimeoutError) else "")
    return redact_keys(f"no answer from {where} ({exc}); check the address (--base_url or OPENAI_BASE_URL), that the "
                       f"server is running and that this machine can reach it{slow}")


STATUS_FIXES = {400: "the request was refused as written: check the model name and its settings",
                401: "the key was refused: check OPENAI_API_KEY (and that it belongs to this server)",
                403: "the key may not use this model or endpoint: check the account's access",
                404: "no such model or route here: check the model name and the address (--base_url or "
                     "OPENAI_BASE_URL, with its /v1)",
                429: "rate or quota limit, after the client's retries: wait, lower --concurrency, or check the "
                     "account's quota"}


def status_message(exc) -> str:
    """What an ``openai.APIStatusError`` (an HTTP error answer, after the client's retries) means: the address,
    the status, the server's words and what to do, never the key. generate's and evaluate's answers received
    before stay cached: a rerun asks only for what is missing."""
    request = getattr(exc, "request", None)
    where = public_url(request.url) if request is not None else "the API"
    status = getattr(exc, "status_code", None)
    fix = STATUS_FIXES.get(status, "the server failed (after the client's retries): run again later"
                           if status is not None and status >= 500 else "see the server's message")
    body = getattr(exc, "body", None)
    said = body.get("message") if isinstance(body, dict) and body.get("message") else None
    said = said or re.sub(r"^Error code: \d+ - ", "", getattr(exc, "message", None) or str(exc))
    return redact_keys(f"{where} answered HTTP {status} ({said}); {fix}; what generate and evaluate received "
                       "before it is cached, and a rerun asks only for the rest")


class LazyAsyncOpenAI:
    """An ``AsyncOpenAI`` made on first call, so a judge or generator can be built (and its settings checked) without
    a key; the key and address come from OPENAI_API_KEY / OPENAI_BASE_URL unless given, and retries with backoff are
    the client's own (``max_retries``). The address is checked (check_api_address) before the client is made: one
    without http(s):// would be retried, then fail naming a password it holds."""

    def __init__(self, base_url: str | None, api_key: str | None, max_retries: int, timeout: float):
        self._kwargs = {"base_url": base_url, "api_key": api_key, "max_retries": max_retries, "timeout": timeout}
        self._client = None

    def get(self):
        if self._client is None:
            from openai import AsyncOpenAI

            check_api_key(self._kwargs["api_key"])
            check_api_address(self._kwargs["base_url"])  # also for a generator or judge made outside the commands
            show_retries()
            self._client = AsyncOpenAI(**self._kwargs)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def timeout_problem(value, flag: str = TIMEOUT_FLAG, example: float = 120) -> str | None:
    """Why ``value`` cannot be the seconds one API request may take (a finite number above 0: the openai client
    refuses 0 deep inside the HTTP library, and waits forever with none), or None."""
    if not finite_number(value) or value <= 0:
        return (f"{flag} must be a number of seconds above 0 (how long one API request may take before the client "
                f"retries it, e.g. {example:g}), got {value!r}")
    return None


RETRY_LOGGER = "openai._base_client"  # where the openai client notes each retry: "Retrying request in ... seconds"
RETRY_NOTE = re.compile(r"Retrying request.*? in (?P<wait>[\d.]+) seconds(?: \(retry (?P<n>\d+) of (?P<of>\d+)\))?")


class RetryNotice(logging.Handler):
    """One line on stderr when the openai client retries a request (a timeout, a connection error, 429 or 5xx), so
    that a run waiting on a slow or failing server says so instead of staying silent for minutes. Calls in flight
    at once fail together: a line is shown for a retry deeper than any shown yet, else at most one every
    ``every_s`` seconds. Only the client's own note is read (its wait and retry count): never a header or a key."""

    def __init__(self, every_s: float = 30.0):
        super().__init__(logging.INFO)
        self.every_s = every_s
        self.deepest = 0
        self.last = -math.inf

    def emit(self, record: logging.LogRecord) -> None:
        try:
            match = RETRY_NOTE.match(record.getMessage())
        except Exception:  # a record whose arguments do not fit its message: not ours to show
            return
        if match is None:
            return
        retry = int(match["n"]) if match["n"] else 0
        now = time.monotonic()
        if retry <= self.deepest and now - self.last < self.every_s:
            return
        self.deepest, self.last = max(self.deepest, retry), now
        from tqdm.auto import tqdm

        which = f"retry {retry} of {match['of']}" if match["n"] else "a retry"
        tqdm.write(f"note: an API request timed out or failed (no connection, 429 or 5xx); the openai client retries "
                   f"it ({which}, in {float(match['wait']):.1f} s); {TIMEOUT_FLAG} sets the seconds a request may "
                   "take", file=sys.stderr)  # above a progress bar, where one is drawn


def show_retries() -> RetryNotice:
    """RetryNotice on the openai client's logger, once a process (its level lowered to INFO where it was higher,
    so the client's retry notes reach it; they are its only INFO records)."""
    logger = logging.getLogger(RETRY_LOGGER)
    for handler in logger.handlers:
        if isinstance(handler, RetryNotice):
            return handler
    handler = RetryNotice()
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler
