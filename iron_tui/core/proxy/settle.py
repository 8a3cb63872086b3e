"""Settling a call: the provider's usage priced, the record's token and cost fields set, the reservation
replaced by the actual cost in the ledger (whole answers and streams alike)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from iron_tui.core.budget_state import Reservation
from iron_tui.core.events import RequestRecord
from iron_tui.core.pricing import TokenUsage

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine


def charge(eng: Engine, rec: RequestRecord, res: Reservation, usage: TokenUsage | None, *,
           estimated: bool) -> None:
    """Settle `res` at the cost of `usage` (None: nothing known — charged 0 and marked estimated)."""
    if usage is None:
        eng.ledger.settle(res, 0 if rec.priced else None, None, estimated=True)
        rec.cost_micros = 0 if rec.priced else None
        rec.cost_estimated = True
        return
    rec.input_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    rec.output_tokens = usage.output_tokens
    rec.cache_read_tokens = usage.cache_read_tokens
    rec.cache_write_tokens = usage.cache_write_tokens
    cost = eng.pricer.cost(rec.provider, rec.model, usage) if rec.priced else None
    rec.cost_micros = cost
    rec.cost_estimated = estimated
    eng.ledger.settle(res, cost, usage, estimated=estimated)
