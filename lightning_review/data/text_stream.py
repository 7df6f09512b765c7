"""Plain text as one stream of windows: the rows of context-extension training and the windows of the perplexity
evaluation (LongLoRA's protocol for both).

Unlike review examples, which are packed with each document isolated, here the documents are joined into one
stream (an end-of-sequence token between them) and cut into windows of exactly the row length, so that positions
run to the full extended context: training on isolated 8K papers would never show the model a position past 8K.
"""

from __future__ import annotations

from typing import Sequence


def stream_windows(documents: Sequence[Sequence[int]], length: int, join: bool = True,
                   separator: int | None = None) -> tuple[list[list[int]], int]:
    """Non-overlapping windows of exactly ``length`` tokens, and how many documents gave none.

    Joined: one stream of all documents (``separator`` between them), its tail shorter than ``length`` left out.
    Not joined: each document on its own; a document shorter than ``length`` is skipped (counted), the tail of a
    longer one left out.
    """
    if length < 2:
        raise ValueError(f"length {length}: a window needs at least 2 tokens")
    if join:
        stream: list[int] = []
        for i, doc in enumerate(documents):
            if i and separator is not None:
                stream.append(separator)
            stream.extend(doc)
        sources, skipped = [stream], 0
    else:
        sources = [list(doc) for doc in documents if len(doc) >= length]
        skipped = len(documents) - len(sources)
    return [src[start:start + length] for src in sources for start in range(0, len(src) - length + 1, length)], skipped
