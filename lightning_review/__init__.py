"""lightning_review: LongQLoRA fine-tuning of Llama models to review research papers, with PyTorch Lightning.

Names are imported on first use (PEP 562), so ``python -m lightning_review cost`` and the other tool commands start
without loading torch, Lightning and transformers.
"""

from importlib import import_module

from . import demo

_EXPORTS = {
    "ReviewWriter": ".training.callbacks", "SaveAdapter": ".training.callbacks", "ReviewDataModule": ".data.datamodule",
    "DEFAULT_SYSTEM_PROMPT": ".data.prompt", "Record": ".data.records", "RecordError": ".data.records",
    "read_jsonl": ".data.records", "document_causal_attention": ".model.attention", "s2_attention": ".model.attention",
    "CheckpointError": ".artifacts.checkpoint_files", "load_llama": ".model.loading", "LongQLoRAModule": ".training.module",
    "review_token_loss": ".model.loss", "DecodingSettings": ".generation.decoding", "generate": ".generation.command",
    "LocalGenerator": ".generation.local", "load_generation_model": ".generation.local",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'lightning_review' has no attribute {name!r}")


# builtin:tiny-llama and builtin:demo-reviews resolve wherever a path does (lightning_review.artifacts.model_sources);
# the package registers them before any of its modules runs.
demo.register()
