"""The training loss without the full logits: next-token cross-entropy over the labelled (review) positions only,
the LM head applied chunk by chunk and recomputed in backward.

Why: a packed 32K-token row of Llama-2 has 32K x 32,000 logits, 2 GB in bf16 and 4 GB more once transformers' loss
upcasts them to fp32, plus their gradient; the loss only needs the review tokens (about a tenth of a row here), and
one chunk of those at a time. Same value as transformers' ``ForCausalLMLoss`` (mean over labelled tokens).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..data.prompt import IGNORE_INDEX


def review_token_loss(hidden: torch.Tensor, labels: torch.Tensor, lm_head: torch.nn.Module,
                      chunk_tokens: int = 4096) -> torch.Tensor:
    """Mean cross-entropy of ``lm_head(hidden[t])`` against ``labels[t + 1]`` over positions whose label is set."""
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    count = int(mask.sum())
    if count == 0:  # no labelled token (cannot happen with our collate; kept differentiable for safety)
        return hidden.sum() * 0.0
    selected = hidden[:, :-1][mask]
    wanted = targets[mask]

    def chunk_loss(h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(lm_head(h).float(), t, reduction="sum")

    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, count, chunk_tokens):
        h, t = selected[start:start + chunk_tokens], wanted[start:start + chunk_tokens]
        total = total + (checkpoint(chunk_loss, h, t, use_reentrant=False) if torch.is_grad_enabled()
                         else chunk_loss(h, t))
    return total / count
