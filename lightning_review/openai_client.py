"""The asynchronous OpenAI client that the chat judges and the API generation backend share the making of."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

OPENAI_ENDPOINT = "https://api.openai.com/v1"  # the openai client's default address


def default_endpoint() -> str:
    """Where a client made without a ``base_url`` sends its calls: OPENAI_BASE_URL, else OpenAI's (as the openai
    client chooses)."""
    return os.environ.get("OPENAI_BASE_URL") or OPENAI_ENDPOINT


def public_url(url) -> str:
    """An address fit for a message: without a user name, password, query or fragment (where keys can hide)."""
    parts = urlsplit(str(url))
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def unreachable_message(exc) -> str:
    """What an ``openai.APIConnectionError`` (or timeout) means, naming the address it tried, never the key."""
    request = getattr(exc, "request", None)
    where = public_url(request.url) if request is not None else "the API"
    return (f"no answer from {where} ({exc}); check the address (--base_url or OPENAI_BASE_URL), that the server is "
            "running and that this machine can reach it")


class LazyAsyncOpenAI:
    """An ``AsyncOpenAI`` made on first call, so a judge or generator can be built (and its settings checked) without
    a key; the key and address come from OPENAI_API_KEY / OPENAI_BASE_URL unless given, and retries with backoff are
    the client's own (``max_retries``)."""

    def __init__(self, base_url: str | None, api_key: str | None, max_retries: int, timeout: float):
        self._kwargs = {"base_url": base_url, "api_key": api_key, "max_retries": max_retries, "timeout": timeout}
        self._client = None

    def get(self):
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(**self._kwargs)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
