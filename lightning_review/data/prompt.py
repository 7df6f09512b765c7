"""The prompt format and the tokenisation rule: truncate the paper, never the review; loss on the review and the
end-of-turn token only.

The format comes from the tokenizer's own chat template when it has one (SmolLM2's ChatML, Llama-2-chat's
``[INST]``, any other): the template is rendered once with placeholder messages and cut into the pieces around the
paper and the review. A checkpoint without a template (a base Llama-2, the tiny demo model) gets Llama-2's chat
format, the one the seed trained with. Every path asks this one object: training, the tokenize cache, predict,
validation reviews and local generation. The chat form of the prompt (``review_messages``) and the truncation rule
(``cut_paper``) are the ones the OpenAI export and API generation use too, counted there in tiktoken's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import UserError

DEFAULT_SYSTEM_PROMPT = (
    "You are an expert reviewer for a machine learning conference. Read the paper and write its peer review: "
    "a summary, the strengths, the weaknesses, questions for the authors and a recommendation."
)
IGNORE_INDEX = -100
_PAPER, _REVIEW = "LIGHTNINGREVIEWPAPERPLACEHOLDER", "LIGHTNINGREVIEWREVIEWPLACEHOLDER"


def chat_prefix(system_prompt: str) -> str:
    """Llama-2 chat: ``<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {answer} </s>`` (BOS/EOS as ids)."""
    return f"[INST] <<SYS>>\n{system_prompt}\n<</SYS>>\n\n"


CHAT_SUFFIX = " [/INST]"


def review_messages(paper: str, system_prompt: str = DEFAULT_SYSTEM_PROMPT, review: str | None = None) -> list[dict]:
    """The prompt as chat messages: the system prompt, the paper as the user's message and, for a training example,
    the review as the assistant's. The chat template renders these; the OpenAI export writes them and API
    generation sends them (without the review)."""
    messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": paper}]
    return messages if review is None else [*messages, {"role": "assistant", "content": review}]


def cut_paper(paper_ids: Sequence, budget: int) -> tuple[list, int]:
    """The one truncation rule: the paper loses its last tokens until it fits ``budget`` (none left below zero);
    the review is never cut. Returns the kept tokens and how many were removed."""
    keep = max(budget, 0)
    if len(paper_ids) <= keep:
        return list(paper_ids), 0
    return list(paper_ids[:keep]), len(paper_ids) - keep


@dataclass(frozen=True)
class TokenizedExample:
    """One example: the prompt's and the target's ids; the loss covers the ids after ``prompt_length``."""

    input_ids: list[int]
    prompt_length: int
    paper_tokens_removed: int

    @property
    def labels(self) -> list[int]:
        return [IGNORE_INDEX] * self.prompt_length + self.input_ids[self.prompt_length:]


@dataclass(frozen=True)
class PromptPieces:
    """The text around the paper and the review: prompt = prefix + paper + suffix; target = lead + review + end."""

    name: str  # "llama-2" (no template) or "chat_template"
    prefix: str
    suffix: str
    review_lead: str
    end: str


def llama2_pieces(tokenizer, system_prompt: str) -> PromptPieces:
    return PromptPieces("llama-2", tokenizer.bos_token + chat_prefix(system_prompt), CHAT_SUFFIX, " ",
                        tokenizer.eos_token)


def template_pieces(tokenizer, system_prompt: str) -> PromptPieces:
    """The chat template rendered with placeholders and cut around them. Spaces right before the review belong to
    it (Llama-2's ``[/INST] {review}``: the space is part of the review's first token); line breaks stay in the
    prompt (ChatML's ``assistant\\n``). The end of the turn is what follows the review, without whitespace."""
    messages = review_messages(_PAPER, system_prompt, _REVIEW)
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception as exc:  # jinja raises for templates that reject a system message, among others
        raise UserError(f"the tokenizer's chat template cannot render a system, user and assistant message "
                        f"({type(exc).__name__}: {exc}); use a checkpoint whose template takes a system prompt"
                        ) from None
    if text.count(_PAPER) != 1 or text.count(_REVIEW) != 1 or text.index(_PAPER) > text.index(_REVIEW):
        raise UserError("the tokenizer's chat template does not place the user's message (the paper) once, before "
                        "the assistant's (the review)")
    before, rest = text.split(_PAPER)
    middle, after = rest.split(_REVIEW)
    suffix = middle.rstrip(" ")
    end = after.strip() or tokenizer.eos_token
    return PromptPieces("chat_template", before, suffix, middle[len(suffix):], end)


def prompt_pieces(tokenizer, system_prompt: str) -> PromptPieces:
    """The tokenizer's chat template when it has one, else Llama-2's chat format."""
    if getattr(tokenizer, "chat_template", None):
        return template_pieces(tokenizer, system_prompt)
    return llama2_pieces(tokenizer, system_prompt)


class ReviewPromptTokenizer:
    """Turns (paper, review) into ids and labels that fit ``max_seq_length``.

    Each piece is tokenised on its own so the paper can be cut at a token boundary without retokenising.
    """

    def __init__(self, tokenizer, system_prompt: str = DEFAULT_SYSTEM_PROMPT, max_seq_length: int = 8192):
        if tokenizer.eos_token_id is None:
            raise UserError("the tokenizer has no end-of-sequence token; set eos_token in its tokenizer_config.json")
        if not getattr(tokenizer, "chat_template", None) and tokenizer.bos_token_id is None:
            raise UserError("the tokenizer has no chat template and no BOS token for Llama-2's chat format; a Llama "
                            "tokenizer defines <s> and </s>")
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.max_seq_length = max_seq_length
        self.pieces = prompt_pieces(tokenizer, system_prompt)
        self._prefix = self._piece_ids(self.pieces.prefix)
        self._suffix = self._ids(self.pieces.suffix)
        self.end_ids = self._piece_ids(self.pieces.end)
        if not self.end_ids:
            raise UserError(f"the chat template ends an answer with {self.pieces.end!r}, which encodes to no token")

    @property
    def stop_token_id(self) -> int:
        """The token that ends the model's turn: generation stops there."""
        return self.end_ids[-1]

    def fingerprint(self) -> list:
        """What decides the ids of an example, for the tokenize cache's key."""
        return [self.pieces.name, self._prefix, self._suffix, self.pieces.review_lead, self.end_ids]

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _piece_ids(self, text: str) -> list[int]:
        """A template piece's ids, with a leading BOS or a whole EOS given as their ids: the text after a special
        token would otherwise be encoded as the middle of a word (no word-start marker), unlike the same text on its
        own, which is how Llama-2's format has always been encoded."""
        tok = self.tokenizer
        if tok.eos_token and text == tok.eos_token:
            return [tok.eos_token_id]
        if tok.bos_token and tok.bos_token_id is not None and text.startswith(tok.bos_token):
            return [tok.bos_token_id, *self._ids(text[len(tok.bos_token):])]
        return self._ids(text)

    def prompt_ids(self, paper: str, budget: int | None = None) -> tuple[list[int], int]:
        """Prefix (BOS, system, user turn) + paper (cut to ``budget`` tokens) + suffix; returns ids and tokens cut."""
        return self.prompt_from_ids(self._ids(paper), budget)

    def prompt_from_ids(self, paper_ids: list[int], budget: int | None = None) -> tuple[list[int], int]:
        """``prompt_ids`` for a paper already encoded (the tokenize cache encodes papers in batches)."""
        removed = 0
        if budget is not None:
            paper_ids, removed = cut_paper(paper_ids, budget)
        return [*self._prefix, *paper_ids, *self._suffix], removed

    def generation_prompt(self, paper: str) -> tuple[list[int], int]:
        """The prompt of a paper to review: the paper cut so the template fits in ``max_seq_length``."""
        return self.prompt_ids(paper, self.max_seq_length - self.fixed_tokens())

    def prompt_template_tokens(self) -> int:
        """Tokens of the prompt that are no paper: the prefix and the suffix."""
        return len(self._prefix) + len(self._suffix)

    def fixed_tokens(self) -> int:
        """Tokens of the template itself: the prompt's pieces and the end of the turn."""
        return self.prompt_template_tokens() + len(self.end_ids)

    def review_text(self, review: str) -> str:
        """The review as it is encoded after the prompt (the end-of-turn ids follow it)."""
        return self.pieces.review_lead + review.strip()

    def review_ids(self, review: str) -> list[int]:
        """The labelled ids: the review and the end of the turn."""
        return [*self._ids(self.review_text(review)), *self.end_ids]

    def fit(self, paper_ids: list[int], review_ids: list[int]) -> tuple[list[int], int] | None:
        """The prompt of an encoded paper cut so that it and ``review_ids`` (end of turn included) fit
        ``max_seq_length``, with the paper tokens cut; None when the review alone does not fit (reviews are never
        truncated). Generation cuts its prompts by its own rule, generation.decoding.ReviewRoom."""
        budget = self.max_seq_length - self.prompt_template_tokens() - len(review_ids)
        if budget < 0:
            return None
        return self.prompt_from_ids(paper_ids, budget)

    def example(self, paper_ids: list[int], review_ids: list[int]) -> TokenizedExample | None:
        """The training example of an encoded paper and target (``review_ids``, end of turn included): the one
        builder of examples (the tokenize cache calls it with ids encoded in batches). None when the review alone
        does not fit: it is never truncated (the caller counts and reports it)."""
        fitted = self.fit(paper_ids, review_ids)
        if fitted is None:
            return None
        prompt, removed = fitted
        return TokenizedExample(input_ids=[*prompt, *review_ids], prompt_length=len(prompt),
                                paper_tokens_removed=removed)

    def __call__(self, paper: str, review: str) -> TokenizedExample | None:
        """``example`` of a paper and review given as text."""
        return self.example(self._ids(paper), self.review_ids(review))
