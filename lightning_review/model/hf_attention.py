"""S2-Attn wired into transformers through its attention registry (AttentionInterface), no monkey-patching.

The model's forward receives ``doc_lens`` (documents per row) and ``s2_group_size``; transformers hands extra forward
keyword arguments to the attention function. In training mode attention is S2 inside each document; in eval mode
(validation, test, predict) it is full causal attention inside each document. Generation with a KV cache uses
``sdpa`` (lightning_review.generation.decoding.full_attention switches to it), since S2 is a training-time
approximation.
"""

from __future__ import annotations

import torch

from .attention import s2_attention

ATTENTION_NAME = "lightning_review_s2"


def s2_attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                         attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                         doc_lens: list[list[int]] | None = None, s2_group_size: int | None = None,
                         attention_backend: str = "auto", **kwargs) -> tuple[torch.Tensor, None]:
    """transformers attention-function signature: (batch, heads, seq, dim) in, (batch, seq, heads, dim) out."""
    if query.shape[2] != key.shape[2]:
        raise RuntimeError(
            f"{ATTENTION_NAME} computes attention over whole packed rows and cannot decode with a KV cache; "
            "generate with attn_implementation='sdpa' (lightning_review.generate does this for you)")
    if attention_mask is not None:
        raise RuntimeError(f"{ATTENTION_NAME} takes document boundaries from doc_lens, not an attention mask; "
                           "pass doc_lens=[[len, ...], ...] to the model's forward instead of attention_mask")
    group_size = s2_group_size if module.training else None
    out = s2_attention(query, key, value, group_size, doc_lens, backend=attention_backend, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def register() -> None:
    """Make ``attn_implementation='lightning_review_s2'`` available to every transformers model (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, s2_attention_forward)
