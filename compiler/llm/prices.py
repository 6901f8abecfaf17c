"""Prices: the shipped price table, recipe overrides, and the dollar cost of one call.

The table (``prices.json`` beside this file) is versioned and dated; every ledger row records the
version that priced it, so a bill can be re-derived later. A model is found by exact name, then by
the longest table name it extends with a snapshot suffix (a date, ``preview``, ``latest``):
``gpt-4o-2024-08-06`` → ``gpt-4o``.
Self-hosted models cost $0 unless the recipe prices them: in-process backends always, and ``openai``
models missing from the table when ``base_url`` points somewhere other than OpenAI. A model missing
from the table on OpenAI itself is an error, because a bill that silently reads $0 cannot be trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from compiler.errors import BackendError
from compiler.llm.types import Usage

if TYPE_CHECKING:
    from compiler.recipe.schema import ModelConfig

OPENAI_HOSTS = ("api.openai.com",)


@dataclass(frozen=True)
class Price:
    """Dollars per 1M tokens. ``cached_input`` None means cached tokens bill as input."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None
    batch_discount: float = 0.5

    def cost(self, usage: Usage, *, batch: bool = False) -> float:
        """Dollars for one call. Reasoning tokens are part of ``completion_tokens`` and bill as output."""
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        usd = ((usage.prompt_tokens - cached) * self.input + cached * cached_rate
               + usage.completion_tokens * self.output) / 1_000_000
        return usd * (1.0 - self.batch_discount) if batch else usd


FREE = Price(0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class PriceTable:
    version: str
    taken: str
    models: dict[str, Price]

    def lookup(self, model: str) -> Price | None:
        name = model.rsplit("/", 1)[-1]
        if name in self.models:
            return self.models[name]
        prefixes = [m for m in self.models if name.startswith(m + "-") and _is_snapshot(name[len(m) + 1:])]
        return self.models[max(prefixes, key=len)] if prefixes else None


def _is_snapshot(suffix: str) -> bool:
    """``2024-08-06``, ``0125``, ``preview``, ``latest``: a version of the same model, not another one."""
    return suffix[:1].isdigit() or suffix.split("-")[0] in ("preview", "latest")


@lru_cache(maxsize=1)
def shipped_table() -> PriceTable:
    raw = json.loads(resources.files("compiler.llm").joinpath("prices.json").read_text("utf-8"))
    return parse_table(raw)


def parse_table(raw: dict[str, Any]) -> PriceTable:
    models = {name: Price(**fields) for name, fields in raw["models"].items()}
    return PriceTable(version=str(raw["version"]), taken=str(raw["taken"]), models=models)


def _is_openai(base_url: str | None) -> bool:
    return base_url is None or any(host in base_url for host in OPENAI_HOSTS)


def resolve_price(config: "ModelConfig", table: PriceTable | None = None) -> tuple[Price, str]:
    """(price, version label) for a model config: ``recipe`` when the recipe prices it, the table's
    version when the table does, ``local`` for self-hosted models that cost nothing."""
    if config.prices is not None:
        p = config.prices
        return Price(p.input, p.output, p.cached_input, p.batch_discount), "recipe"
    if config.backend != "openai":
        return FREE, "local"
    table = table or shipped_table()
    found = table.lookup(config.model)
    if found is not None:
        return found, table.version
    if not _is_openai(config.base_url):
        return FREE, "local"
    raise BackendError(f"no price for model {config.model!r} in price table {table.version}; "
                       "add `prices: {input: X, output: Y}` (dollars per 1M tokens) to its model config")


def money(usd: float | None) -> str:
    """Dollars for people: cents from $1 up; below, up to 4 decimals (6 under a cent) so that small
    bills do not read $0.00."""
    usd = usd or 0.0
    if usd >= 1:
        return f"${usd:.2f}"
    text = f"{usd:.4f}" if usd >= 0.01 or usd == 0 else f"{usd:.6f}"
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.rstrip('0').ljust(2, '0')}"
