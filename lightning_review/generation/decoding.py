"""Decoding settings and batched generation with transformers' ``generate`` (KV cache, left padding).

Kept in one place so the ``generate`` command, ``predict`` and the validation reviews decode the same way.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

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
