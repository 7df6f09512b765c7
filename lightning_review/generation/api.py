"""Generation through an OpenAI-compatible chat API (GPT-4, a fine-tuned GPT-3.5, a vLLM server): the baseline
reviews the evaluator compares against, in the same file format as local generation.

The training system prompt and the paper as the user message (the chat form the GPT-3.5 fine-tuning uses), with one
sentence added to the system message by default: the request for the ``Rating: <n>`` line that training targets end
with (lightning_review.data.rating_line.rating_request), so an API model's reviews state a rating that ``evaluate``
can score against the human ones, as the trained model's do (``generate`` reads the line back into ``rating`` for
both backends). Calls run concurrently under a limit; retries with exponential backoff are the openai client's own
(``max_retries``); each answer is cached in SQLite (lightning_review.answer_cache), so a rerun costs nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Sequence

from openai import APIConnectionError, APITimeoutError

from ..answer_cache import AnswerCache, call_key
from ..data.prompt import DEFAULT_SYSTEM_PROMPT, review_messages
from ..data.rating_line import rating_request
from ..errors import UserError
from ..openai_client import LazyAsyncOpenAI, check_api_address, default_endpoint, public_url, redact_keys
from ..openai_ft.chat_format import truncate_paper_to_fit
from ..openai_ft.tokens import count_message_tokens, encoding_name, get_encoding
from .decoding import DecodingSettings

PROMPT_VERSION = "generate-v1"


def api_endpoint(base_url: str | None) -> str:
    """The server an API generator with ``base_url`` asks, as it is recorded (in the answer cache's keys and in the
    reviews file's settings) and shown: ``base_url``, else OPENAI_BASE_URL, else OpenAI's, without the user name,
    password, query or fragment of the address, and with the API key replaced by a placeholder wherever else it
    appears, e.g. in the path (openai_client.public_url: no key is written anywhere)."""
    return public_url(base_url or default_endpoint())


def api_encoding(model: str, settings: DecodingSettings, max_context: int | None, encoding: str | None):
    """The tiktoken encoding papers are counted with (None when ``max_context`` is None: papers are sent whole),
    after checking that a paper fits beside ``max_new_tokens``; generate calls it before it writes anything."""
    if max_context is None:
        return None
    if max_context <= settings.max_new_tokens:
        raise UserError(f"--max_new_tokens {settings.max_new_tokens} leaves no room for a paper in --max_context "
                        f"{max_context}; lower --max_new_tokens or raise --max_context (0 sends papers whole)")
    if encoding is None:
        try:
            encoding = encoding_name(model)
        except UserError:
            raise UserError(f"no known tiktoken encoding for model {model!r}: pass the one it uses, --encoding "
                            "cl100k_base (GPT-4, GPT-3.5) or --encoding o200k_base (GPT-4o), or --max_context 0 to "
                            "send papers whole (uncounted)") from None
    return get_encoding(encoding)


class ApiUnreachableError(UserError):
    """No answer from the API's address (nothing listening, a wrong host, a timeout): the message names the address,
    never the key."""


@dataclass
class ApiGenerator:
    """Args: model (the API's model name), cache, base_url / api_key (default: OPENAI_BASE_URL / OPENAI_API_KEY),
    concurrency (calls in flight), max_context (the model's context in tokens: papers are cut so that the prompt and
    ``max_new_tokens`` fit, counted with tiktoken; None: papers are sent whole), encoding (tiktoken encoding; default
    the model's), rating_scale ((low, high): the system message asks for the rating line on this scale; None: the
    training system prompt alone, e.g. for a model fine-tuned on it that learnt the line from its targets)."""

    model: str
    cache: AnswerCache
    settings: DecodingSettings
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 8
    max_context: int | None = 16_385
    encoding: str | None = None
    max_retries: int = 5
    timeout: float = 600.0
    rating_scale: tuple[float, float] | None = (1, 10)
    calls: int = field(default=0, init=False)

    def __post_init__(self):
        check_api_address(self.base_url)  # refused when made, before its first call (LazyAsyncOpenAI checks again)
        self._api = LazyAsyncOpenAI(self.base_url, self.api_key, self.max_retries, self.timeout)
        self.endpoint = api_endpoint(self.base_url)
        self._encoding = api_encoding(self.model, self.settings, self.max_context, self.encoding)
        if self.rating_scale is not None:
            rating_request(*self.rating_scale)  # a reversed scale is refused before any call

    @property
    def client(self):
        return self._api.get()

    @property
    def system_message(self) -> str:
        """The training system prompt, and the rating line's request unless ``rating_scale`` is None."""
        if self.rating_scale is None:
            return self.system_prompt
        return f"{self.system_prompt}\n\n{rating_request(*self.rating_scale)}"

    def messages(self, paper: str) -> tuple[list[dict], int]:
        """System message + paper (the training prompt's messages), the paper cut by the training rule to fit the
        context beside ``max_new_tokens`` of review; returns tokens cut."""
        messages = review_messages(paper, self.system_message)
        if self._encoding is None:
            return messages, 0
        return truncate_paper_to_fit(messages, self._encoding, self.max_context - self.settings.max_new_tokens)

    async def review(self, paper_id: str, paper: str, semaphore: asyncio.Semaphore) -> dict:
        messages, removed = self.messages(paper)
        request = {"model": self.model, "messages": messages, "max_tokens": self.settings.max_new_tokens,
                   "temperature": self.settings.temperature, "top_p": self.settings.top_p}
        if not self.settings.greedy:
            request["seed"] = self.settings.batch_seed([paper_id])
        if self.settings.repetition_penalty != 1.0:  # not an OpenAI parameter; vLLM and TGI servers accept it
            request["extra_body"] = {"repetition_penalty": self.settings.repetition_penalty}
        # the server is part of what is asked: one model name at two servers is two models
        key = call_key(self.model, PROMPT_VERSION, {k: v for k, v in request.items() if k != "model"},
                       endpoint=self.endpoint)
        answer = await self.cache.fetch(key, lambda: self._call(key, request, semaphore, paper_id))
        if answer["prompt_tokens"] is None and self._encoding is not None:
            answer = dict(answer, prompt_tokens=count_message_tokens(messages, self._encoding))
        return {"id": paper_id, "system": messages[0]["content"], **answer, "truncated": removed > 0,
                "paper_tokens_removed": removed}

    async def _call(self, key: str, request: dict, semaphore: asyncio.Semaphore, paper_id: str) -> dict:
        """One API call, its answer cached under ``key``. An answer without text (no choice, or a message whose
        content is null or blank: a refusal, a tool call, a filtered answer) is an error, not an empty review saved
        and cached, which a rerun would then never ask again."""
        async with semaphore:
            self.calls += 1
            response = await self.client.chat.completions.create(**request)
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "").strip() if choice is not None else ""
        if not text:
            why = f"finish_reason {choice.finish_reason!r}" if choice is not None else "no choices"
            raise UserError(f"{self.model} at {public_url(self.client.base_url)} answered paper {paper_id!r} with no "
                            f"text ({why}); nothing is saved for it: check --api_model and the server, then run "
                            "again (the answers already saved are kept)")
        usage = response.usage
        answer = {"review": text, "finish_reason": choice.finish_reason,
                  "prompt_tokens": usage.prompt_tokens if usage else None,
                  "generated_tokens": usage.completion_tokens if usage else None}
        self.cache.put(key, self.model, PROMPT_VERSION, answer, answer["prompt_tokens"] or 0,
                       answer["generated_tokens"] or 0)
        return answer

    def unreachable(self, exc: APIConnectionError) -> str:
        """What failed, where, and what to check."""
        url = public_url(self.client.base_url)
        tries = f"{self.max_retries + 1} attempt{'s' if self.max_retries else ''}"
        if isinstance(exc, APITimeoutError):
            return (f"the API at {url} did not answer within {self.timeout:g} s ({tries}); check that the server is "
                    "up and not overloaded, and that --base_url (or OPENAI_BASE_URL) is its address, or give a slow "
                    "server more seconds a call with --timeout_s")
        cause = f" ({redact_keys(exc.__cause__)})" if exc.__cause__ is not None and str(exc.__cause__) else ""
        return (f"could not connect to the API at {url}{cause} ({tries}); check that the server is running and "
                "reachable from here, and that --base_url (or OPENAI_BASE_URL) is its address, e.g. "
                "http://localhost:8000/v1")

    async def run(self, papers: Sequence[tuple[str, str]], on_review) -> None:
        """Review every (id, paper); ``on_review(record)`` as each answer arrives (in completion order)."""
        semaphore = asyncio.Semaphore(self.concurrency)
        tasks = [asyncio.ensure_future(self.review(i, p, semaphore)) for i, p in papers]
        try:
            for done in asyncio.as_completed(tasks):
                on_review(await done)
        except APIConnectionError as exc:  # "Connection error." alone says neither where nor what to check
            raise ApiUnreachableError(self.unreachable(exc)) from None
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._api.close()
