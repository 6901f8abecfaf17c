"""Dollar budgets shared by every LLM client of one compile.

A budget has an optional total and optional per-stage caps. It knows what the same compile already
spent: the first time a client uses a stage fingerprint, the paid ledger rows of that fingerprint are
added in, so a rerun counts the calls it paid for before (their cached answers now cost $0) and a
higher budget resumes exactly where a lower one stopped. Admission is checked before each new call;
calls in flight when the cap is reached finish and are recorded, then ``generate`` raises
:class:`~compiler.errors.BudgetExceeded`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from compiler.errors import BudgetExceeded
from compiler.llm.prices import money

if TYPE_CHECKING:
    from compiler.recipe.schema import BudgetConfig
    from compiler.store.db import Store


class Budget:
    def __init__(self, total_usd: float | None = None, per_stage: dict[str, float] | None = None):
        self.total_usd = total_usd
        self.per_stage = dict(per_stage or {})
        self.spent_total = 0.0
        self.spent_by_stage: dict[str, float] = {}
        self._loaded: set[str] = set()

    @classmethod
    def from_config(cls, config: "BudgetConfig", override_usd: float | None = None) -> "Budget":
        """The recipe's ``budget:`` section; ``--budget X`` on the command line replaces its total."""
        return cls(override_usd if override_usd is not None else config.usd, config.stages)

    def load_past(self, store: "Store | None", stage: str, stage_fp: str) -> None:
        """Add what earlier runs paid for ``stage_fp`` (once per fingerprint)."""
        if store is None or stage_fp in self._loaded:
            return
        self._loaded.add(stage_fp)
        usd = store.con.execute("SELECT coalesce(sum(usd), 0) FROM llm_calls WHERE stage_fp = ?",
                                [stage_fp]).fetchone()[0]
        self.charge(stage, float(usd))

    @staticmethod
    def _key(stage: str) -> str:
        """A stage's budget key: its recipe name (a ledger label ``name:part`` counts for ``name``)."""
        return stage.split(":", 1)[0]

    def charge(self, stage: str, usd: float) -> None:
        stage = self._key(stage)
        self.spent_total += usd
        self.spent_by_stage[stage] = self.spent_by_stage.get(stage, 0.0) + usd

    def admits(self, stage: str) -> bool:
        """May a new call start in ``stage``?"""
        stage = self._key(stage)
        if self.total_usd is not None and self.spent_total >= self.total_usd:
            return False
        cap = self.per_stage.get(stage)
        return cap is None or self.spent_by_stage.get(stage, 0.0) < cap

    def exceeded(self, stage: str, not_sent: int) -> BudgetExceeded:
        stage = self._key(stage)
        cap = self.per_stage.get(stage)
        if cap is not None and self.spent_by_stage.get(stage, 0.0) >= cap:
            what = f"stage {stage!r} budget {money(cap)} reached ({money(self.spent_by_stage[stage])} spent)"
        else:
            what = f"budget {money(self.total_usd)} reached ({money(self.spent_total)} spent)"
        return BudgetExceeded(f"{what}; {not_sent} requests not sent; rerun with a higher budget to resume "
                              "(paid calls are cached)")
