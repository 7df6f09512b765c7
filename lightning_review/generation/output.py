"""The reviews file: one JSON object a line, appended as each review is done, so an interrupted run resumes.

Each line: ``{"id", "system", "review", "rating", "prompt_tokens", "generated_tokens", "truncated",
"paper_tokens_removed", "finish_reason", "settings"}``. ``rating`` is the review's own rating line read back
(lightning_review.data.rating_line.parse_rating; null when the review states none in that form). The evaluator reads
``id`` and ``review`` (and the rating from the review by the same rule).

Resuming, the lock (``<file>.lock``, removed when the run ends: two runs appending to one file would review every
paper twice) and ``overwrite`` (into ``<file>.partial``, renamed over the file once complete) are the shared
resumable JSONL output's (lightning_review.artifacts.resumable_jsonl); this module adds the settings every line must
share.
"""

from __future__ import annotations

from pathlib import Path

from ..artifacts.resumable_jsonl import ResumableJsonl, lock_path, partial_path
from ..data.rating_line import parse_rating
from ..errors import UserError
from ..openai_client import redact_keys

__all__ = ["ReviewsFile", "lock_path", "partial_path"]


SOURCES = ("openai", "local")  # settings["backend"]: who wrote a review


def _source(settings: dict) -> tuple:
    """Who writes the reviews: the backend, the model and, for an API model, the server (its recorded endpoint)."""
    return settings.get("backend"), settings.get("model"), settings.get("endpoint")


def _describe(settings: dict) -> str:
    if settings.get("backend") == "local":
        return f"the local model {settings.get('model')}"
    endpoint = settings.get("endpoint")
    at = (f"at {redact_keys(endpoint)}" if endpoint
          else "at an endpoint it does not record (written before generate recorded it)")
    return f"the API model {settings.get('model')!r} {at}"


class ReviewsFile(ResumableJsonl):
    """Locks ``path`` and opens it for appending after checking what it already holds; use as a context manager
    (the lock is held until it exits) and call ``finish()`` when every paper is written.

    A run resumes only with the settings the file was written with (a file mixing two decodings would make a
    comparison meaningless); a last line cut by a crash is removed (``repaired``) and generated again; ids written
    more than once (two runs at once before the lock existed, a file concatenated twice) are counted in
    ``duplicates``, never silently merged.
    """

    COMMAND = "generate"
    FLAG = "--output_file"
    FILE_KIND = "reviews file"
    RECORD = "review"
    TWICE = "review the same papers twice"

    def __init__(self, path: str | Path, settings: dict, overwrite: bool = False):
        self.settings = settings
        super().__init__(path, overwrite)

    def check_line(self, obj: dict, where: str, start_over: str) -> None:
        """Every line was written with this run's settings: first the model (and, for an API model, the server:
        ``endpoint``), then the decoding."""
        saved = obj.get("settings") if isinstance(obj.get("settings"), dict) else {}
        if isinstance(saved.get("endpoint"), str):  # a line written before keys in an address's path were redacted
            saved = {**saved, "endpoint": redact_keys(saved["endpoint"])}  # holds the key: compared as it is now
        if saved.get("backend") in SOURCES and _source(saved) != _source(self.settings):
            raise UserError(self._other_source(saved, where, start_over))
        if not isinstance(obj.get("settings"), dict) or saved != self.settings:
            changed = sorted(k for k in set(saved) | set(self.settings) if saved.get(k) != self.settings.get(k))
            raise UserError(f"{where}: written with other settings (differs in {', '.join(changed)}); a resumed "
                            f"run must decode as the first one did: {start_over}")

    def _other_source(self, saved: dict, where: str, start_over: str) -> str:
        """The file was made by another model or server than this run asks: what it was made with, what is asked,
        and the fixes (endpoints as recorded: without credentials)."""
        made, asked = _describe(saved), _describe(self.settings)
        same_model = _source(saved)[:2] == _source(self.settings)[:2]
        if same_model and saved.get("endpoint") is None:  # an API file written before endpoints were recorded
            return (f"{where}: this {self.FILE_KIND} was made with {made}, and this run asks for {asked}: whether "
                    "they are one server cannot be checked, and two would mix their reviews in one file. "
                    f"{start_over[0].upper()}{start_over[1:]} (what the same server answered before is in the answer "
                    "cache and costs no call)")
        if saved.get("backend") == "openai":
            same = "the same model and endpoint (--api_model {}{})".format(
                saved.get("model"), f" --base_url {saved['endpoint']}" if saved.get("endpoint") else "")
        else:
            same = f"the model it was made with ({saved.get('model')})"
        return (f"{where}: this {self.FILE_KIND} was made with {made}, but this run asks for {asked}: resuming "
                f"would mix reviews of {'two servers' if same_model else 'two models'} in one file. Resume it "
                f"with {same}, or {start_over}")

    def write(self, record: dict) -> None:
        """Append one review, with the rating it states, and make it durable before the next one starts."""
        super().write({**record, "rating": parse_rating(record["review"]), "settings": self.settings})
