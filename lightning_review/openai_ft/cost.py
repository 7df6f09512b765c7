"""What fine-tuning costs: billed tokens x epochs x the price per 1K training tokens, in dollars and a local currency.

The seed's estimate: 118,689,950 tokens x 2 epochs x $0.008 / 1K x 7.18 CNY/USD = 1,899.04 USD = 13,635.1 CNY.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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


def price_for(model: str, prices_file: str | Path | None = None) -> float:
    """The table's price for ``model`` (the longest matching prefix, so fine-tuned names and dated versions match)."""
    table = dict(TRAINING_PRICE_PER_1K_USD)
    if prices_file:
        table.update(json.loads(Path(prices_file).read_text()))
    matches = [name for name in table if model.startswith(name)]
    if not matches:
        raise ValueError(f"no training price for model {model!r} in the table ({', '.join(sorted(table))}); "
                         "pass --price_per_1k or --prices prices.json")
    return table[max(matches, key=len)]
