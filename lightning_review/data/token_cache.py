"""Tokenize once: the prompt/review token ids of every record, on disk under a key of everything that decides them.

The key hashes the tokenizer (its full serialisation), the chat template and system prompt, max_seq_length, the
rating-line setting and the records themselves (their papers and training targets), so a changed template, tokenizer or data file is a new entry and never a stale hit. An entry is
three NumPy arrays (all ids concatenated, offsets, prompt lengths) and a JSON of ids and statistics, written to a
temporary directory and renamed, so a reader never sees half an entry. Papers and reviews are encoded in batches by
the tokenizers library, whose Rust thread pool uses every core.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .prompt import IGNORE_INDEX, ReviewPromptTokenizer
from .rating_line import training_target
from .records import Record

TEMPLATE_VERSION = "llama2-chat-v1"  # bump when prompt.py changes how examples are built


@dataclass
class TokenizedRecords:
    """Examples of records that fit (reviews never cut), as views into one array."""

    ids: np.ndarray  # int32, all examples concatenated
    offsets: np.ndarray  # int64, example i is ids[offsets[i]:offsets[i + 1]]
    prompt_lengths: np.ndarray  # int32, tokens before the review (their labels are IGNORE_INDEX)
    meta: dict  # "record_index" (which record each example is), "paper_tokens_removed", "too_long" (record indices)

    def __len__(self) -> int:
        return len(self.prompt_lengths)

    def example(self, i: int) -> dict:
        """A view into the (memory-mapped) ids and the prompt length; collate_rows derives the labels."""
        return {"input_ids": self.ids[self.offsets[i]:self.offsets[i + 1]], "prompt_length": int(self.prompt_lengths[i])}

    def labels(self, i: int) -> np.ndarray:
        ids = self.ids[self.offsets[i]:self.offsets[i + 1]].astype(np.int64)
        ids[: self.prompt_lengths[i]] = IGNORE_INDEX
        return ids

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def cache_key(encoder: ReviewPromptTokenizer, records: Sequence[Record], rating_line: bool = False) -> str:
    h = hashlib.sha256()
    tok = encoder.tokenizer
    backend = getattr(tok, "backend_tokenizer", None)
    h.update((backend.to_str() if backend is not None else repr(sorted(tok.get_vocab().items()))).encode())
    h.update(json.dumps([TEMPLATE_VERSION, encoder.system_prompt, encoder.max_seq_length, tok.bos_token_id,
                         tok.eos_token_id, encoder.fingerprint(), rating_line]).encode())
    for record in records:
        h.update(record.paper.encode())
        h.update(b"\0")
        h.update(training_target(record, rating_line).encode())
        h.update(b"\1")
    return h.hexdigest()[:24]


def tokenize_records(encoder: ReviewPromptTokenizer, records: Sequence[Record], batch_size: int = 256,
                     progress: bool = True, rating_line: bool = False) -> TokenizedRecords:
    """The same examples ReviewPromptTokenizer builds one by one, encoded in batches; the targets are
    ``training_target`` (the review, with ``rating_line`` its rating line)."""
    from tqdm import tqdm

    tok = encoder.tokenizer
    chunks, prompt_lengths, record_index, removed_counts, too_long = [], [], [], [], []
    bar = tqdm(total=len(records), desc="tokenizing", unit="record", disable=not progress)
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        papers = tok([r.paper for r in batch], add_special_tokens=False)["input_ids"]
        reviews = tok([encoder.review_text(training_target(r, rating_line)) for r in batch],
                      add_special_tokens=False)["input_ids"]
        for j, (paper, review) in enumerate(zip(papers, reviews)):
            example = encoder.example(paper, [*review, *encoder.end_ids])
            if example is None:
                too_long.append(start + j)
                continue
            chunks.append(np.asarray(example.input_ids, dtype=np.int32))
            prompt_lengths.append(example.prompt_length)
            record_index.append(start + j)
            removed_counts.append(example.paper_tokens_removed)
        bar.update(len(batch))
    bar.close()
    lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    return TokenizedRecords(ids, offsets, np.asarray(prompt_lengths, dtype=np.int32),
                            {"record_index": record_index, "paper_tokens_removed": removed_counts,
                             "too_long": too_long})


def load_or_build(encoder: ReviewPromptTokenizer, records: Sequence[Record], cache_dir: str | Path | None,
                  progress: bool = True, rating_line: bool = False) -> tuple[TokenizedRecords, bool]:
    """(tokenized records, whether the cache was hit). ``cache_dir`` None: no cache."""
    if cache_dir is None:
        return tokenize_records(encoder, records, progress=progress, rating_line=rating_line), False
    entry = Path(cache_dir) / cache_key(encoder, records, rating_line)
    if (entry / "meta.json").is_file():
        return _load(entry), True
    tokenized = tokenize_records(encoder, records, progress=progress, rating_line=rating_line)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".building-"))
    np.save(tmp / "ids.npy", tokenized.ids)
    np.save(tmp / "offsets.npy", tokenized.offsets)
    np.save(tmp / "prompt_lengths.npy", tokenized.prompt_lengths)
    (tmp / "meta.json").write_text(json.dumps(tokenized.meta))
    try:
        os.rename(tmp, entry)
    except OSError:  # another process finished the same entry first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return tokenized, False


def _load(entry: Path) -> TokenizedRecords:
    return TokenizedRecords(np.load(entry / "ids.npy", mmap_mode="r"), np.load(entry / "offsets.npy"),
                            np.load(entry / "prompt_lengths.npy"), json.loads((entry / "meta.json").read_text()))
