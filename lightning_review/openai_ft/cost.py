"""What fine-tuning costs: billed tokens x epochs x the price per 1K training tokens, in dollars and a local currency.

The seed's estimate: 118,689,950 tokens x 2 epochs x $0.008 / 1K x 7.18 CNY/USD = 1,899.04 USD = 13,635.1 CNY.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError, finite_number

# USD per 1K training tokens, as OpenAI's price list gave them when this table was written; prices change, so check
# https://openai.com/api/pricing and override with --price_per_1k or --prices (a JSON file of the same shape).
TRAINING_PRICE_PER_1K_USD = {
    "gpt-3.5-turbo": 0.008,
    "gpt-4o-mini": 0.003,
    "gpt-4o": 0.025,
}


@dataclass(frozen=True)
class CostEstimate:
    tokens_per_epoch: int
    epochs: int
    price_per_1k: float
    exchange_rate: float | None = None
    currency: str = "CNY"

    def __post_init__(self):
        """A negative or zero count, price or rate would print a bill that means nothing: refuse it, naming the
        flag (every problem at once)."""
        problems = [problem for problem in (
            whole_number_problem("--tokens", self.tokens_per_epoch, "tokens per epoch"),
            whole_number_problem("--epochs", self.epochs, "epochs"),
            positive_number_problem("--price_per_1k", self.price_per_1k, "USD per 1K training tokens"),
            None if self.exchange_rate is None else positive_number_problem(
                "--exchange_rate", self.exchange_rate, f"{self.currency} per USD"),
        ) if problem]
        if problems:
            raise UserError("; ".join(problems))

    @property
    def billed_tokens(self) -> int:
        return self.tokens_per_epoch * self.epochs

    @property
    def usd(self) -> float:
        return self.billed_tokens / 1000 * self.price_per_1k

    @property
    def local(self) -> float | None:
        return None if self.exchange_rate is None else self.usd * self.exchange_rate

    def lines(self) -> list[str]:
        out = [f"{self.tokens_per_epoch:,} tokens x {self.epochs} epochs x ${self.price_per_1k:g} per 1K tokens",
               f"{self.usd:,.2f} USD"]
        if self.local is not None:
            out.append(f"{self.local:,.1f} {self.currency} (at {self.exchange_rate:g} {self.currency}/USD)")
        return out


def whole_number_problem(flag: str, value, what: str) -> str | None:
    """Why ``value`` is not a whole number of at least 1 (None when it is)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return None
    return f"{flag} must be a whole number of {what}, 1 or more (got {value!r})"


def positive_number_problem(flag: str, value, what: str) -> str | None:
    """Why ``value`` is not a finite number above 0 (None when it is)."""
    if finite_number(value) and value > 0:
        return None
    return f"{flag} must be a number above 0, in {what} (got {value!r})"


def read_prices(prices_file: str | Path) -> dict[str, float]:
    """A prices JSON file {model prefix: USD per 1K training tokens}, every price checked."""
    try:
        table = json.loads(Path(prices_file).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise UserError(f"{prices_file}: not a JSON file of prices ({exc}); write it as "
                        '{"model prefix": USD per 1K training tokens}') from None
    if not isinstance(table, dict):
        raise UserError(f'{prices_file}: must hold a JSON object {{"model prefix": USD per 1K training tokens}}, '
                        f"got a {type(table).__name__}")
    problems = [positive_number_problem(f"{prices_file}: {name!r}", price, "USD per 1K training tokens")
                for name, price in table.items()]
    problems = [problem for problem in problems if problem]
    if problems:
        raise UserError("; ".join(problems))
    return table


def price_for(model: str, prices_file: str | Path | None = None) -> float:
    """The table's price for ``model`` (the longest matching prefix, so fine-tuned names and dated versions match)."""
    table = dict(TRAINING_PRICE_PER_1K_USD)
    if prices_file:
        table.update(read_prices(prices_file))
    matches = [name for name in table if model.startswith(name)]
    if not matches:
        raise UserError(f"no training price for model {model!r} in the table ({', '.join(sorted(table))}); "
                         "pass --price_per_1k or --prices prices.json")
    return table[max(matches, key=len)]
