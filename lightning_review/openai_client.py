"""The asynchronous OpenAI client that the chat judges and the API generation backend share the making of."""

from __future__ import annotations


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
