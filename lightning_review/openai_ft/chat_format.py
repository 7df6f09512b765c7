"""Paper->review records as OpenAI chat fine-tuning examples, subsets of them, and OpenAI's format checks.

One example a line: ``{"messages": [{"role": "system", ...}, {"role": "user", "content": <paper>},
{"role": "assistant", "content": <review>}]}``, the system prompt being the one local training uses, and the review
being local training's target too (with the rating line when the records have ratings: lightning_review.data.
rating_line). A chat-format input line keeps its own system message unless a system prompt is given explicitly
(``system_for``).
"""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..data.prompt import DEFAULT_SYSTEM_PROMPT, cut_paper, review_messages
from ..data.rating_line import resolve_rating_line, training_target
from ..data.readers import read_records
from ..data.records import Record, RecordError, iter_json_objects
from ..errors import UserError
from .tokens import count_message_tokens

ROLES = ("system", "user", "assistant", "tool", "function")
MESSAGE_KEYS = {"role", "content", "name", "function_call", "tool_calls", "tool_call_id", "weight"}
DEFAULT_MAX_TOKENS = 16_385  # per example, the gpt-3.5-turbo-16k class (OpenAI truncates longer examples)


def system_for(record: Record, system_prompt: str | None = None) -> str:
    """The system message of a record's example: ``system_prompt`` when given (it replaces every other), else the
    record's own (a chat-format line's system message, which its author chose and may have trained with), else
    local training's default."""
    if system_prompt is not None:
        return system_prompt
    return record.extra.get("system_prompt") or DEFAULT_SYSTEM_PROMPT


def to_messages(record: Record, system_prompt: str | None = None, rating_line: bool = False) -> list[dict]:
    """The chat example of a record (its system message chosen by ``system_for``); the assistant's answer is local
    training's target (``training_target``)."""
    return review_messages(record.paper, system_for(record, system_prompt), training_target(record, rating_line))


def select(records: Sequence[Record], first: int | None = None, sample: int | None = None,
           fraction: float | None = None, seed: int = 0) -> list[Record]:
    """A subset, as the seed staged its runs (156 pairs, about 1,500, then all): the first N, a seeded random N, or
    a seeded random fraction."""
    chosen = [name for name, value in (("first", first), ("sample", sample), ("fraction", fraction)) if value]
    if len(chosen) > 1:
        raise UserError(f"choose one of first, sample and fraction, not {' and '.join(chosen)}")
    if first:
        return list(records[:first])
    if fraction:
        if not 0 < fraction <= 1:
            raise UserError(f"fraction must be in (0, 1], got {fraction}")
        sample = max(1, round(len(records) * fraction))
    if sample:
        if sample > len(records):
            raise UserError(f"sample={sample} but the file has {len(records)} records")
        keep = sorted(random.Random(seed).sample(range(len(records)), sample))
        return [records[i] for i in keep]
    return list(records)


def truncate_paper_to_fit(messages: list[dict], encoding, max_tokens: int) -> tuple[list[dict], int]:
    """Training's truncation rule (lightning_review.data.prompt.cut_paper) in an OpenAI model's tokens: the paper
    (the user message of ``review_messages``) is cut so the example fits in ``max_tokens``; reviews are never cut,
    nor is the paper cut to nothing (OpenAI refuses an empty message). Returns the messages and the number of paper
    tokens removed; a UserError saying by how many tokens the example is over when no cut fits."""
    over = count_message_tokens(messages, encoding) - max_tokens
    if over <= 0:
        return messages, 0
    paper = encoding.encode(messages[1]["content"], disallowed_special=())
    cut = over
    while cut < len(paper):
        kept, removed = cut_paper(paper, len(paper) - cut)
        fitted = [messages[0], dict(messages[1], content=encoding.decode(kept)), *messages[2:]]
        if count_message_tokens(fitted, encoding) <= max_tokens:
            return fitted, removed
        cut += 1  # decode/encode may merge tokens differently
    # The overflow reported is measured, not the count of cuts tried (which re-encoding can push past the paper).
    bare = count_message_tokens([messages[0], dict(messages[1], content=""), *messages[2:]], encoding)
    if bare > max_tokens:
        raise UserError(f"the example is {bare - max_tokens} tokens over the limit of {max_tokens} even without its "
                        f"paper: the review and system prompt alone take {bare} tokens; raise the limit or shorten "
                        "them")
    raise UserError(f"the example is {over} tokens over the limit of {max_tokens} and no cut of its paper fits: the "
                    f"review and system prompt alone take {bare} of the {max_tokens} tokens, and the paper's text, "
                    "once cut, re-encodes longer than the room left; raise the limit or shorten them")


def export_chat_jsonl(records: Iterable[Record], path: str | Path, encoding=None, max_tokens: int | None = None,
                      system_prompt: str | None = None, rating_line: bool = False) -> dict:
    """Write chat examples (``system_prompt``: see ``system_for``); with ``encoding`` and ``max_tokens``, papers are
    truncated to fit. Returns counts."""
    written = truncated = removed = 0
    with Path(path).open("w", encoding="utf-8") as f:
        for record in records:
            messages = to_messages(record, system_prompt, rating_line)
            if encoding is not None and max_tokens:
                messages, cut = truncate_paper_to_fit(messages, encoding, max_tokens)
                truncated += cut > 0
                removed += cut
            f.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
            written += 1
    return {"examples": written, "papers_truncated": truncated, "paper_tokens_removed": removed}


@dataclass
class ValidationReport:
    """OpenAI's format checks and token statistics of a chat fine-tuning file."""

    examples: int = 0
    errors: list[str] = field(default_factory=list)  # "file:line: reason"
    error_counts: Counter = field(default_factory=Counter)
    token_counts: list[int] = field(default_factory=list)
    over_limit: list[tuple[str, int]] = field(default_factory=list)  # (file:line, tokens)
    max_tokens: int = DEFAULT_MAX_TOKENS

    @property
    def ok(self) -> bool:
        return not self.errors

    def billed_tokens_per_epoch(self) -> int:
        """OpenAI truncates examples over the limit, so each is billed at most ``max_tokens``."""
        return sum(min(n, self.max_tokens) for n in self.token_counts)

    def summary(self) -> dict:
        counts = sorted(self.token_counts)
        stats = {}
        if counts:
            # inclusive: the default (exclusive) method extrapolates past the largest count on a few examples
            q = statistics.quantiles(counts, n=20, method="inclusive") if len(counts) > 1 else [counts[0]] * 19
            stats = {"min": counts[0], "p50": statistics.median(counts), "p95": q[18], "max": counts[-1],
                     "mean": statistics.fmean(counts), "total": sum(counts)}
        return {"examples": self.examples, "format_errors": dict(self.error_counts), "tokens": stats,
                "max_tokens_per_example": self.max_tokens, "over_limit": len(self.over_limit),
                "over_limit_examples": [f"{where} ({n} tokens)" for where, n in self.over_limit[:20]],
                "billed_tokens_per_epoch": self.billed_tokens_per_epoch()}


def check_example(obj, where: str) -> list[str]:
    """The reasons an example would be refused (empty when it is well formed)."""
    if not isinstance(obj, dict):
        return [f"{where}: an example must be a JSON object, got {type(obj).__name__}"]
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        return [f"{where}: missing or empty 'messages' list"]
    problems = []
    for i, message in enumerate(messages):
        at = f"{where}: messages[{i}]"
        if not isinstance(message, dict) or "role" not in message:
            problems.append(f"{at}: each message needs a 'role' and 'content'")
            continue
        if message["role"] not in ROLES:
            problems.append(f"{at}: unknown role {message['role']!r} (one of {', '.join(ROLES)})")
        unknown = set(message) - MESSAGE_KEYS
        if unknown:
            problems.append(f"{at}: unknown keys {sorted(unknown)}")
        content = message.get("content")
        if message["role"] != "assistant" or "function_call" not in message and "tool_calls" not in message:
            if not isinstance(content, str) or not content.strip():
                problems.append(f"{at}: content must be a non-empty string")
    roles = [m.get("role") for m in messages if isinstance(m, dict)]
    body = roles[1:] if roles and roles[0] == "system" else roles
    if "system" in body:
        problems.append(f"{where}: a system message may only come first")
    if not body or body[0] != "user":
        problems.append(f"{where}: the conversation must start with a user message (after an optional system one)")
    if any(a == b for a, b in zip(body, body[1:])):
        problems.append(f"{where}: user and assistant messages must alternate")
    if "assistant" not in roles:
        problems.append(f"{where}: no assistant message: nothing to learn from")
    elif roles[-1] != "assistant":
        problems.append(f"{where}: the last message must be the assistant's")
    return problems


def validate_chat_jsonl(path: str | Path, encoding, max_tokens: int = DEFAULT_MAX_TOKENS) -> ValidationReport:
    report = ValidationReport(max_tokens=max_tokens)
    for where, obj in iter_json_objects(Path(path)):
        report.examples += 1
        problems = check_example(obj, where)
        if problems:
            report.errors += problems
            report.error_counts.update(p.split(": ")[-1].split(" (")[0] for p in problems)
            continue
        n = count_message_tokens(obj["messages"], encoding)
        report.token_counts.append(n)
        if n > max_tokens:
            report.over_limit.append((where, n))
    return report


def read_examples(path: str | Path, system_prompt: str | None = None,
                  rating_line: bool | None = None) -> Iterator[list[dict]]:
    """The chat examples of a file that holds either chat examples (decided by its first line), taken as they are,
    or paper->review records, which become examples with ``system_prompt`` (None: local training's) and
    ``rating_line`` (None: when every record has a rating, as in training)."""
    for _, messages in located_examples(path, system_prompt, rating_line):
        yield messages


def is_chat_file(path: str | Path) -> bool:
    """Whether a file holds chat examples (its first line has ``messages``), not paper->review records."""
    return "messages" in next(iter_json_objects(path), (None, {}))[1]


def located_examples(path: str | Path, system_prompt: str | None = None,
                     rating_line: bool | None = None) -> Iterator[tuple[str, list[dict]]]:
    """``read_examples`` with where each example is in the file: ``line N`` of a chat line, ``line N, id X`` of a
    record (what the record's reader names as its place where that is not a line number)."""
    if is_chat_file(path):
        for where, obj in iter_json_objects(path):
            problems = check_example(obj, where)
            if problems:
                raise RecordError(problems[0] + " (python -m lightning_review openai validate lists every problem)")
            yield f"line {where.rsplit(':', 1)[1]}", obj["messages"]
    else:
        records = read_records(path).records
        with_rating = resolve_rating_line(rating_line, records, str(path), "--")  # the openai tools' --rating_line
        for record in records:
            yield _record_place(record, str(path)), to_messages(record, system_prompt, with_rating)


def _record_place(record: Record, path: str) -> str:
    place = (record.where or "").removeprefix(f"{path}:")
    place = f"line {place}" if place.isdigit() else place
    return f"{place}, id {record.id}" if place else f"id {record.id}"


OVER_LIMIT_SHOWN = 3  # places named in an over-limit message; the rest are counted


def over_limit_detail(over: Sequence[tuple[str, int]], examples: int, max_tokens: int, what: str = "examples") -> str:
    """``N of M <what> are over the limit of L tokens per example (line 3: 20,100 tokens; ...; and K more)``: the
    words cost's warning and validate's and upload's refusal share. ``over`` holds (place, tokens), a place being
    ``file:N`` (said as ``line N``: the message names the file first) or a place of ``located_examples``."""
    shown = "; ".join(f"{_place(where)}: {tokens:,} tokens" for where, tokens in over[:OVER_LIMIT_SHOWN])
    more = f"; and {len(over) - OVER_LIMIT_SHOWN} more" if len(over) > OVER_LIMIT_SHOWN else ""
    verb = "is" if len(over) == 1 else "are"
    return (f"{len(over)} of {examples} {what} {verb} over the limit of {max_tokens:,} tokens per example "
            f"({shown}{more})")


def _place(where: str) -> str:
    head, _, tail = where.rpartition(":")
    return f"line {tail}" if head and tail.isdigit() else where


# What OpenAI does with an example over the limit (its fine-tuning guide: tokens are removed from the end).
OPENAI_TRUNCATES = "OpenAI truncates such an example from its end, cutting the review it is trained on"


def fit_fix(max_tokens: int) -> str:
    """How to make every example fit: export's truncation cuts the paper, never the review."""
    return (f"export the file again with papers cut to fit (`openai export --max_tokens={max_tokens}`, without "
            "--truncate=false), or shorten those papers")
