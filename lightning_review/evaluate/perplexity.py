"""Perplexity at several context lengths: the context-extension measure of LongLoRA and LongQLoRA.

Protocol (LongLoRA's proof-pile / PG19 evaluation): each document is cut into non-overlapping windows of exactly the
evaluated length; every window is scored on its own with full causal attention (each token after the first predicts
from the window's tokens before it), and perplexity is exp of the mean negative log-likelihood over all scored
tokens. A document shorter than a length gives no window at that length and is counted as skipped. Real papers are
5K-13K tokens, so ``join=True`` first joins the documents into one stream (the tokenizer's end-of-sequence token
between them); the output says which was used, with the tokens and windows behind every figure, so two runs can be
compared.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import torch

from ..data.text_stream import stream_windows
from ..model.loss import review_token_loss


@dataclass(frozen=True)
class LengthPerplexity:
    """The perplexity at one context length and what it was measured on."""

    length: int
    perplexity: float | None
    windows: int
    tokens_scored: int
    skipped_documents: int
    mean_nll: float | None


def _backbone_and_head(model):
    """The decoder stack and the LM head of a causal LM, with or without peft around it: the loss is computed
    from the hidden states chunk by chunk, never from a (length x vocabulary) logits tensor."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.get_decoder(), inner.get_output_embeddings()


@torch.no_grad()
def window_nll(model, window: Sequence[int], chunk_tokens: int = 4096) -> float:
    """The summed negative log-likelihood of a window's tokens 2..n (full causal attention)."""
    backbone, head = _backbone_and_head(model)
    device = next(model.parameters()).device
    ids = torch.tensor([list(window)], device=device)
    hidden = backbone(input_ids=ids, use_cache=False).last_hidden_state
    mean = review_token_loss(hidden, ids, head, chunk_tokens=chunk_tokens)
    return float(mean) * (len(window) - 1)


def perplexity_at_lengths(model, documents: Sequence[Sequence[int]], lengths: Iterable[int], join: bool = False,
                          separator: int | None = None, max_windows: int | None = None,
                          progress: bool = False) -> list[LengthPerplexity]:
    """The perplexity of ``documents`` (token ids) at each length; ``max_windows`` caps the windows a length
    scores (the first ones, so two runs with the same cap score the same tokens)."""
    results = []
    model.eval()
    for length in lengths:
        chosen, skipped = stream_windows(documents, length, join, separator)
        chosen = chosen[:max_windows] if max_windows else chosen
        total, scored = 0.0, 0
        iterator = chosen
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(chosen, desc=f"perplexity @ {length}", unit="window", dynamic_ncols=True)
        for window in iterator:
            total += window_nll(model, window)
            scored += len(window) - 1
        mean = total / scored if scored else None
        results.append(LengthPerplexity(length, math.exp(mean) if mean is not None else None, len(chosen), scored,
                                        skipped, mean))
    return results


def results_table(results: Sequence[LengthPerplexity]) -> str:
    """A Markdown table of the results, one row a length."""
    rows = ["| length | perplexity | windows | tokens scored | documents skipped |", "|---|---|---|---|---|"]
    for r in results:
        ppl = f"{r.perplexity:,.2f}" if r.perplexity is not None else "n/a (no window)"
        rows.append(f"| {r.length:,} | {ppl} | {r.windows} | {r.tokens_scored:,} | {r.skipped_documents} |")
    return "\n".join(rows)


def as_dicts(results: Sequence[LengthPerplexity]) -> list[dict]:
    return [asdict(r) for r in results]
