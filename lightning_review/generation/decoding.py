"""Decoding settings, the room a review prompt leaves for the review, and batched generation with transformers'
``generate`` (KV cache, left padding).

Kept in one place so the ``generate`` command, ``predict`` and the validation reviews fit their prompts and decode the
same way.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Protocol, Sequence

import torch

from ..errors import UserError


@dataclass(frozen=True)
class DecodingSettings:
    """Greedy when ``temperature`` is 0; otherwise sampling with ``temperature`` and nucleus ``top_p``."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise UserError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise UserError(f"temperature must be >= 0 (0 is greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise UserError(f"repetition_penalty must be > 0 (1 is none), got {self.repetition_penalty}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def as_dict(self) -> dict:
        return asdict(self)

    def generate_kwargs(self) -> dict:
        """``generate`` arguments; only the ones that apply, so transformers does not warn about unused ones."""
        kwargs = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty,
                  "do_sample": not self.greedy}
        if not self.greedy:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=0)
        return kwargs

    def batch_seed(self, ids: Sequence[str]) -> int:
        """A seed of the batch's paper ids, not of the run's history: with one paper a batch, a resumed run samples
        each paper exactly as an uninterrupted run does."""
        return (self.seed * 1_000_003 + zlib.crc32("\n".join(ids).encode())) % 2**63


class PromptTemplate(Protocol):
    """What ReviewRoom asks of lightning_review.data.prompt.ReviewPromptTokenizer (named by its methods, so that
    decoding needs no import of the data layer)."""

    def prompt_template_tokens(self) -> int: ...

    def prompt_from_ids(self, paper_ids: list, budget: int | None = None) -> tuple[list, int]: ...


def _setting(name: str, value: int) -> str:
    """A setting as its user writes it: ``--max_new_tokens 512`` for a flag, ``model.max_new_tokens=512`` for a
    config key."""
    return f"{name} {value}" if name.startswith("--") else f"{name}={value}"


@dataclass(frozen=True)
class ReviewRoom:
    """The model's context shared between a review prompt and the review: ``max_new_tokens`` kept for the review,
    the rest for the prompt, whose paper is cut by the training rule (its last tokens go) until it fits. The one
    prompt-fitting rule of the ``generate`` command, ``predict`` and the validation reviews: tokens generated past
    the context would sit at positions the model (its RoPE interpolation) never had.

    Refused at once when ``max_new_tokens`` leaves no token of the context for a prompt; the error names
    ``tokens_setting`` (``--max_new_tokens``, ``model.max_new_tokens``) and says where the context comes from
    (``context_source``) and, in ``other_fix``, how else to make room.
    """

    context: int
    max_new_tokens: int
    tokens_setting: str
    context_source: str
    other_fix: str = ""

    def __post_init__(self):
        if self.context <= self.max_new_tokens:
            raise UserError(f"{_setting(self.tokens_setting, self.max_new_tokens)} leaves no room for a paper in the "
                            f"model's context of {self.context} tokens ({self.context_source}): lower "
                            f"{self.tokens_setting} below {self.context}{self._other_fix()}")

    def _other_fix(self) -> str:
        return f", {self.other_fix}" if self.other_fix else ""

    def paper_budget(self, prompts: PromptTemplate) -> int:
        """The paper tokens a prompt of ``prompts`` may hold beside ``max_new_tokens``; refused when the template and
        ``max_new_tokens`` alone do not fit (checked before a model loads or trains, as well as at each prompt)."""
        template = prompts.prompt_template_tokens()
        budget = self.context - template - self.max_new_tokens
        if budget < 0:
            raise UserError(f"{_setting(self.tokens_setting, self.max_new_tokens)} and the prompt template "
                            f"({template} tokens) do not fit the model's context of {self.context} tokens "
                            f"({self.context_source}): lower {self.tokens_setting} to at most "
                            f"{self.context - template}{self._other_fix()}")
        return budget

    def fit(self, prompts: PromptTemplate, paper_ids: Sequence[int]) -> tuple[list[int], int]:
        """The prompt of an encoded paper, the paper cut so that the prompt and ``max_new_tokens`` fit the context;
        with the paper tokens cut. Refused when the template and ``max_new_tokens`` alone do not fit."""
        return prompts.prompt_from_ids(list(paper_ids), self.paper_budget(prompts))

    def refit(self, prompts: PromptTemplate, prompt_ids: Sequence[int]) -> tuple[list[int], int]:
        """``fit`` for a prompt already built by ``prompts``: predict's and the validation reviews' prompts come from
        the DataModule cut to data.max_seq_length, which may be the whole context, leaving no room for the review."""
        return self.fit(prompts, paper_ids_of(prompts, prompt_ids))


def paper_ids_of(prompts: PromptTemplate, prompt_ids: Sequence[int]) -> list[int]:
    """The paper's ids inside a prompt that ``prompts`` built: the prompt of a one-item stand-in paper (an object
    equal to no token id) shows where the template's prefix ends and how long its suffix is."""
    marker = object()
    probe, _ = prompts.prompt_from_ids([marker])
    start = probe.index(marker)
    suffix = len(probe) - start - 1
    end = len(prompt_ids) - suffix
    if end < start or list(prompt_ids[:start]) != probe[:start] or list(prompt_ids[end:]) != probe[start + 1:]:
        raise ValueError("the prompt was not built with this prompt template (its prefix or suffix differs)")
    return list(prompt_ids[start:end])


@contextmanager
def full_attention(model, implementation: str = "sdpa") -> Iterator[None]:
    """Full causal attention with a KV cache while generating; the model's own attention (S2 for training) after."""
    previous = model.config._attn_implementation
    if previous == implementation:
        yield
        return
    model.set_attn_implementation(implementation)
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


@dataclass(frozen=True)
class Continuation:
    ids: list[int]
    finish_reason: str  # "stop" (EOS) or "length" (max_new_tokens reached)


def generate_ids(model, prompts: Sequence[Sequence[int]], settings: DecodingSettings, pad_id: int,
                 eos_id: int | None = None, seed: int | None = None) -> list[Continuation]:
    """The continuations of a batch of prompts, left padded to one length (the KV cache needs aligned ends)."""
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    eos_id = eos_id if eos_id is not None else model.generation_config.eos_token_id
    stops = set(eos_id) if isinstance(eos_id, (list, tuple)) else {eos_id}
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device), use_cache=True,
                             pad_token_id=pad_id, eos_token_id=eos_id, **settings.generate_kwargs())
    results = []
    for row in out[:, width:].tolist():
        end = next((i for i, token in enumerate(row) if token in stops), None)
        results.append(Continuation(row, "length") if end is None else Continuation(row[:end], "stop"))
    return results
