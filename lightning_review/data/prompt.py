"""The Llama-2 chat prompt and the tokenisation rule: truncate the paper, never the review; loss on the review only."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SYSTEM_PROMPT = (
    "You are an expert reviewer for a machine learning conference. Read the paper and write its peer review: "
    "a summary, the strengths, the weaknesses, questions for the authors and a recommendation."
)
IGNORE_INDEX = -100


def chat_prefix(system_prompt: str) -> str:
    """Llama-2 chat: ``<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {answer} </s>`` (BOS/EOS as ids)."""
    return f"[INST] <<SYS>>\n{system_prompt}\n<</SYS>>\n\n"


CHAT_SUFFIX = " [/INST]"


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]
    paper_tokens_removed: int


class ReviewPromptTokenizer:
    """Turns (paper, review) into ids and labels that fit ``max_seq_length``.

    Each piece is tokenised on its own so the paper can be cut at a token boundary without retokenising.
    """

    def __init__(self, tokenizer, system_prompt: str = DEFAULT_SYSTEM_PROMPT, max_seq_length: int = 8192):
        if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no BOS or EOS token; a Llama tokenizer defines <s> and </s>")
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.max_seq_length = max_seq_length
        self._prefix = self._ids(chat_prefix(system_prompt))
        self._suffix = self._ids(CHAT_SUFFIX)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def prompt_ids(self, paper: str, budget: int | None = None) -> tuple[list[int], int]:
        """BOS + chat prefix + paper (cut to ``budget`` tokens of paper) + suffix; returns ids and tokens cut."""
        return self.prompt_from_ids(self._ids(paper), budget)

    def prompt_from_ids(self, paper_ids: list[int], budget: int | None = None) -> tuple[list[int], int]:
        """``prompt_ids`` for a paper already encoded (the tokenize cache encodes papers in batches)."""
        removed = 0
        if budget is not None and len(paper_ids) > budget:
            removed = len(paper_ids) - max(budget, 0)
            paper_ids = paper_ids[: max(budget, 0)]
        return [self.tokenizer.bos_token_id, *self._prefix, *paper_ids, *self._suffix], removed

    def generation_prompt(self, paper: str) -> tuple[list[int], int]:
        """The prompt of a paper to review: the paper cut so the template fits in ``max_seq_length``."""
        return self.prompt_ids(paper, self.max_seq_length - self.fixed_tokens())

    def fixed_tokens(self) -> int:
        """Tokens of the template itself: BOS, prefix, suffix and EOS."""
        return 2 + len(self._prefix) + len(self._suffix)

    @staticmethod
    def review_text(review: str) -> str:
        """The review as it is encoded after ``[/INST]``."""
        return " " + review.strip()

    def fit(self, paper_ids: list[int], review_ids: list[int]) -> tuple[list[int], int] | None:
        """The prompt of an encoded paper cut so that it and ``review_ids`` (EOS included) fit ``max_seq_length``,
        with the paper tokens cut; None when the review alone does not fit (reviews are never truncated)."""
        budget = self.max_seq_length - self.fixed_tokens() + 1 - len(review_ids)
        if budget < 0:
            return None
        return self.prompt_from_ids(paper_ids, budget)

    def __call__(self, paper: str, review: str) -> TokenizedExample | None:
        """None when the review alone does not fit: it is never truncated (the caller counts and reports it)."""
        review_ids = [*self._ids(self.review_text(review)), self.tokenizer.eos_token_id]
        fitted = self.fit(self._ids(paper), review_ids)
        if fitted is None:
            return None
        prompt, removed = fitted
        return TokenizedExample(
            input_ids=prompt + review_ids,
            labels=[IGNORE_INDEX] * len(prompt) + review_ids,
            paper_tokens_removed=removed,
        )
