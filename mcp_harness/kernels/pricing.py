"""A small price table, so runs report (and budgets cap) dollars, not only tokens.

Prices are USD per million tokens (input, output), list prices of the providers' public pages.
Lookup is exact after dropping a date suffix (`-20250929`) or `-latest`: a guessed prefix match
would price a new model with an old model's price. Unknown models cost 0 and the runner notes
it; add a price under `[kernel.prices]` in config.toml (`"my-model" = [in, out]`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mcp_harness.kernels.base import Usage

PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4-0": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4-0": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4.1-nano": (0.1, 0.4),
}

_SUFFIX = re.compile(r"(-\d{8}|-\d{4}-\d{2}-\d{2}|-latest)$")


def price_of(
    model: str | None, extra: Mapping[str, tuple[float, float]] | None = None
) -> tuple[float, float] | None:
    """(input, output) USD per million tokens, or None when the model is not in the table."""
    if not model:
        return None
    table = {**PRICES_PER_MTOK, **(extra or {})}
    if model in table:
        return table[model]
    return table.get(_SUFFIX.sub("", model))


def cost_usd(usage: Usage, price: tuple[float, float]) -> float:
    return (usage.input_tokens * price[0] + usage.output_tokens * price[1]) / 1_000_000
