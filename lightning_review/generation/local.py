"""Generation with a local Llama: a base checkpoint + a lightning_review adapter, or a merged / plain Hugging Face
directory; 4-bit NF4 or bf16 base; full attention with a KV cache; batches of papers of similar length."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

import torch

from ..data.prompt import DEFAULT_SYSTEM_PROMPT, ReviewPromptTokenizer
from ..artifacts.model_sources import resolve
from ..errors import UserError
from ..artifacts.checkpoint_files import load_tokenizer
from ..model.loading import dtype_name, load_llama, peft_reading_checkpointing_flag
from .decoding import DecodingSettings, ReviewRoom, generate_ids


@dataclass(frozen=True)
class PreparedPaper:
    id: str
    prompt_ids: list[int]
    paper_tokens_removed: int


def check_model_source(model_dir: str | None, adapter_dir: str | None) -> None:
    if (model_dir is None) == (adapter_dir is None):
        raise UserError("give either --model_dir (a merged or plain Llama checkpoint directory) or --adapter_dir "
                         "(an adapter written by lightning_review, with --checkpoint_dir if its base moved), "
                         "or --api_model for an API model")


def load_generation_model(model_dir: str | None = None, adapter_dir: str | None = None,
                          checkpoint_dir: str | None = None, quantize: bool = False,
                          dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto",
                          device: str | None = None):
    """(model, tokenizer) for generation, in eval mode with SDPA attention.

    With ``adapter_dir``, the base is ``checkpoint_dir`` or the one the adapter records, loaded with the adapter's
    RoPE scaling; in bf16 the LoRA weights are merged (faster decoding), in 4-bit they stay beside the quantized
    layers. With ``model_dir``, a merged export or any Llama checkpoint directory, loaded as it is.
    """
    check_model_source(model_dir, adapter_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = getattr(torch, dtype_name(dtype, device))
    if adapter_dir is not None:
        from peft import PeftModel

        from ..artifacts.adapter_record import adapter_fits, base_named_by_record, read_adapter_meta

        adapter = resolve(adapter_dir)
        meta = read_adapter_meta(adapter)  # a merged or foreign model goes through model_dir instead
        base_dir = checkpoint_dir or meta["checkpoint_dir"]
        with base_named_by_record(adapter_dir, base_dir, recorded=not checkpoint_dir):
            tokenizer = load_tokenizer(base_dir)  # first: a base without tokenizer files fails before the weights
            base = load_llama(base_dir, quantize=quantize, model_max_length=meta.get("model_max_length"),
                              device=device, dtype=torch_dtype, attn_implementation="sdpa")
        with adapter_fits(adapter_dir, base_dir), peft_reading_checkpointing_flag():
            model = PeftModel.from_pretrained(base, str(adapter))
            if not quantize:  # the adapter's fp32 embeddings and norms are folded in and cast to the model's dtype
                model = model.merge_and_unload().to(torch_dtype)
    else:
        tokenizer = load_tokenizer(model_dir)
        model = load_llama(model_dir, quantize=quantize, device=device, dtype=torch_dtype,
                           attn_implementation="sdpa")
    model.eval()
    return model, tokenizer


class LocalGenerator:
    """Reviews of papers from a local model: the training prompt, papers cut by the training rule so prompt and
    review fit the model's context, longest papers first (an out-of-memory shows at once), ``batch_size`` at a time.
    """

    def __init__(self, model, tokenizer, settings: DecodingSettings, system_prompt: str = DEFAULT_SYSTEM_PROMPT,
                 max_context: int | None = None, batch_size: int = 1):
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.batch_size = batch_size
        self.max_context = max_context or model.config.max_position_embeddings
        source = "--max_context" if max_context else "its max_position_embeddings; --max_context is left out"
        self.room = ReviewRoom(self.max_context, settings.max_new_tokens, "--max_new_tokens", source)
        self.prompts = ReviewPromptTokenizer(tokenizer, system_prompt, self.max_context)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def prepare(self, papers: Sequence[tuple[str, str]]) -> list[PreparedPaper]:
        """Prompts of (id, paper) pairs: the paper cut so that the prompt and ``max_new_tokens`` new tokens fit, as
        training cuts a paper so that it and its review fit ``max_seq_length``."""
        encoded = self.tokenizer([paper for _, paper in papers], add_special_tokens=False)["input_ids"]
        prepared = []
        for (paper_id, _), paper_ids in zip(papers, encoded):
            prompt, removed = self.room.fit(self.prompts, paper_ids)
            prepared.append(PreparedPaper(paper_id, prompt, removed))
        return prepared

    def batches(self, prepared: Sequence[PreparedPaper]) -> Iterator[list[PreparedPaper]]:
        ordered = sorted(prepared, key=lambda p: -len(p.prompt_ids))
        for start in range(0, len(ordered), self.batch_size):
            yield ordered[start:start + self.batch_size]

    def generate(self, batch: Sequence[PreparedPaper]) -> list[dict]:
        started = time.perf_counter()
        seed = None if self.settings.greedy else self.settings.batch_seed([p.id for p in batch])
        continuations = generate_ids(self.model, [p.prompt_ids for p in batch], self.settings, self.pad_id,
                                     self.prompts.stop_token_id, seed)
        seconds = time.perf_counter() - started
        return [{"id": paper.id, "review": self.tokenizer.decode(out.ids, skip_special_tokens=True).strip(),
                 "prompt_tokens": len(paper.prompt_ids), "generated_tokens": len(out.ids),
                 "truncated": paper.paper_tokens_removed > 0, "paper_tokens_removed": paper.paper_tokens_removed,
                 "finish_reason": out.finish_reason, "seconds": round(seconds / len(batch), 3)}
                for paper, out in zip(batch, continuations)]
