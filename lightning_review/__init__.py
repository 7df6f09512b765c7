"""lightning_review: LongQLoRA fine-tuning of Llama models to review research papers, with PyTorch Lightning."""

from .callbacks import ReviewWriter, SaveAdapter
from .data.datamodule import ReviewDataModule
from .data.prompt import DEFAULT_SYSTEM_PROMPT
from .data.records import Record, RecordError, read_jsonl
from .model.attention import document_causal_attention, s2_attention
from .model.loading import CheckpointError, load_llama
from .model.module import LongQLoRAModule

__all__ = ["DEFAULT_SYSTEM_PROMPT", "CheckpointError", "LongQLoRAModule", "Record", "RecordError", "ReviewDataModule",
           "ReviewWriter", "SaveAdapter", "document_causal_attention", "load_llama", "read_jsonl", "s2_attention"]
__version__ = "0.1.0"
