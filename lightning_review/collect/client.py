"""openreview-py clients (API v2 ``openreview.api.OpenReviewClient``, API v1 ``openreview.Client``) with the
credentials from the environment, a timeout on every request, a request rate limit, and retries with backoff that
this module owns (tenacity), so that waits and reports are ours, not the client's.

The client's own urllib3 retries (8 tries, up to 120 s apart, and no timeout) are replaced by a transport adapter
that waits for the rate limit, sets the timeout and turns 429 and 5xx answers into ``TransientHTTPError``. Login
happens after that swap, so it is retried and timed out like any request. OPENREVIEW_USERNAME and
OPENREVIEW_PASSWORD are read here and given to the client only; no message of this package contains them, nor
the token the server returns. Without them the client is anonymous (public notes only).
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from ..errors import UserError
from ..redaction import redact_environment_values

T = TypeVar("T")
CREDENTIALS = ("OPENREVIEW_USERNAME", "OPENREVIEW_PASSWORD")
TRANSIENT_STATUS = {429, 500, 502, 503, 504}


class TransientHTTPError(requests.RequestException):
    """A 429 or 5xx answer: worth another try."""

    def __init__(self, status: int, method: str, path: str):
        super().__init__(f"HTTP {status} for {method} {path}")
        self.status = status


class CollectError(UserError):
    """OpenReview could not be reached or refused: the message says what failed and that a rerun resumes."""


class _Adapter(HTTPAdapter):
    """Rate limit, timeout and transient-status errors for every request of the client's session."""

    def __init__(self, timeout_s: float, min_interval_s: float):
        super().__init__(max_retries=0, pool_maxsize=16)
        self.timeout_s, self.min_interval_s = timeout_s, min_interval_s
        self._lock, self._next = threading.Lock(), 0.0

    def send(self, request, **kwargs):
        with self._lock:
            now = time.monotonic()
            wait, self._next = max(0.0, self._next - now), max(now, self._next) + self.min_interval_s
        if wait:
            time.sleep(wait)
        kwargs["timeout"] = self.timeout_s
        response = super().send(request, **kwargs)
        if response.status_code in TRANSIENT_STATUS:
            path = requests.utils.urlparse(request.url).path
            raise TransientHTTPError(response.status_code, request.method, path)
        return response


@contextmanager
def _hidden_credentials() -> Iterator[None]:
    """The clients log in from the environment inside their constructor, before their session can be set up; the
    variables are hidden during construction so that the login below goes through our adapter."""
    saved = {k: os.environ.pop(k) for k in CREDENTIALS if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class Fetcher:
    """Calls into an openreview-py client, retried with exponential backoff on timeouts, connection errors, 429
    and 5xx; after ``max_attempts`` a CollectError names the call and the last failure."""

    def __init__(self, client, max_attempts: int = 5, retry_wait_s: float = 2.0, max_wait_s: float = 60.0):
        self.client = client
        self.max_attempts, self.retry_wait_s, self.max_wait_s = max_attempts, retry_wait_s, max_wait_s
        self.retries = 0

    def __call__(self, what: str, fn: Callable[..., T], *args, **kwargs) -> T:
        def before_sleep(state):
            self.retries += 1

        retrying = Retrying(stop=stop_after_attempt(self.max_attempts),
                            wait=wait_exponential(multiplier=self.retry_wait_s, max=self.max_wait_s),
                            retry=retry_if_exception(_transient), before_sleep=before_sleep, reraise=False)
        try:
            return retrying(fn, *args, **kwargs)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise CollectError(f"OpenReview did not answer {what} after {self.max_attempts} attempts (last: "
                               f"{_describe(last)})") from None


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, (TransientHTTPError, requests.ConnectionError, requests.Timeout))


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return str(exc)


def make_client(api_version: int, baseurl: str, timeout_s: float = 60.0, requests_per_second: float = 2.0,
                max_attempts: int = 5, retry_wait_s: float = 2.0) -> Fetcher:
    """A Fetcher around an API v2 or v1 client of ``baseurl``, logged in when OPENREVIEW_USERNAME is set."""
    import openreview
    from openreview import OpenReviewException

    username, password = (os.environ.get(k) for k in CREDENTIALS)
    if bool(username) != bool(password):
        raise UserError("set both OPENREVIEW_USERNAME and OPENREVIEW_PASSWORD, or neither (anonymous access)")
    with _hidden_credentials():
        client = (openreview.api.OpenReviewClient if api_version == 2 else openreview.Client)(baseurl=baseurl)
    adapter = _Adapter(timeout_s, 1.0 / requests_per_second if requests_per_second > 0 else 0.0)
    for prefix in list(client.session.adapters) + ["http://", "https://"]:
        client.session.mount(prefix, adapter)
    fetcher = Fetcher(client, max_attempts=max_attempts, retry_wait_s=retry_wait_s)
    if username:
        try:
            fetcher(f"the login at {baseurl}", client.login_user, username, password)
        except OpenReviewException as exc:
            raise CollectError(f"OpenReview refused the login of the account in OPENREVIEW_USERNAME at {baseurl} "
                               f"({_server_message(exc)}); check the two variables") from None
    return fetcher


def _server_message(exc: Exception) -> str:
    """The server's own words from an OpenReviewException (a dict with name/message), never the request, and
    without the credentials: a server or proxy may repeat what it was sent."""
    arg = exc.args[0] if exc.args else ""
    if isinstance(arg, dict):
        return redact_environment_values(str(arg.get("message") or arg.get("name") or "refused"), CREDENTIALS)
    return redact_environment_values(str(arg), CREDENTIALS)[:200]  # cut after: a cut password would escape it
