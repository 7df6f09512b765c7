"""torch.compile of the pieces of each decoder layer (``model.compile_layers``), attention left to its own kernels.

Why: around its matmuls a decoder layer runs dozens of small elementwise kernels (LoRA's dropout, scaling and add,
the MLP's activation and product, the norms' casts); inductor fuses them. What gets compiled is every direct child of
a decoder layer except the attention module, and the attention module's own children (the q/k/v/o projections with
their LoRA): not the layer or the attention module themselves, whose forward passes the per-row document layout
(``doc_lens``, Python lists) on to attention, so dynamo would guard on it and recompile for every new packing
(tests/model/test_compiled.py fails that way). The attention function is also excluded
(``torch.compiler.disable``): it calls fused SDPA/flex kernels already. RoPE stays eager.
The layers share the compiled graphs (torch passes module parameters as graph inputs), so compiling 40 layers costs
about as much as one; it runs inside gradient checkpointing and activation offload alike.
"""

from __future__ import annotations

import torch

from .loading import decoder_layers


def compiled_pieces(layer: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules of one decoder layer that ``compile_decoder_layers`` compiles."""
    attention = layer.self_attn
    return [child for child in layer.children() if child is not attention] + list(attention.children())


def compile_decoder_layers(model: torch.nn.Module) -> int:
    """``torch.compile`` (``nn.Module.compile``, in place) the pieces of every decoder layer of ``model``; returns
    how many modules were compiled."""
    layers = decoder_layers(model)
    if not layers:
        raise ValueError("model.compile_layers: found no decoder layers to compile in this model")
    pieces = [piece for layer in layers for piece in compiled_pieces(layer)]
    for piece in pieces:
        piece.compile()
    return len(pieces)
