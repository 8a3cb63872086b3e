"""Budget admission: reserve a call's worst-case cost before it goes upstream (→ 402 when it cannot fit).

Runs after the pair translated the request, on the upstream body in the provider's dialect: that is what
the provider bills.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iron_tui.core.budget import BudgetExceeded, Reservation, budget_error_body
from iron_tui.core.dialects.client_apis import shape_of
from iron_tui.core.estimate import input_token_bound, max_output_tokens
from iron_tui.core.events import RequestRecord
from iron_tui.core.proxy.errors import ProxyError

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine

# The client API whose body shape a provider dialect's request has (what `estimate.py` understands).
_ESTIMATE_API = {"anthropic": "anthropic.messages", "openai": "openai.chat", "openai-responses": "openai.responses"}


def estimate_api(upstream_api: str, client_api: str, native: bool) -> str:
    return client_api if native else _ESTIMATE_API.get(upstream_api, client_api)


def admit(engine: Engine, rec: RequestRecord, body: dict[str, Any], api: str, raw: bytes | None) -> Reservation:
    """Book the call's worst case in the ledger. `api`: the estimate API of `body`; `raw`: its bytes when
    they are exactly what goes upstream (enables the bound's fast path)."""
    eng = engine
    rates = eng.pricer.rates(rec.provider, rec.model)
    if rates is None:
        rec.priced = False
        if eng.pricer.strict:
            raise ProxyError(
                400, f"model {rec.model!r} has no known price and strict pricing is on (--strict-pricing)",
                param="model", code="unpriced_model",
            )
        amount = 0
    else:
        bound = input_token_bound(body, api, raw)
        max_out = max_output_tokens(body, api, eng.settings.default_max_tokens)
        rec.max_output_tokens = max_out
        amount = eng.pricer.worst_case(rec.provider, rec.model, bound, max_out) or 0
    if eng.lease_error is not None and eng.ledger.limit is None:
        raise ProxyError(503, f"no budget lease from the Iron Cage server yet: {eng.lease_error}",
                         code="budget_lease_unavailable")
    try:
        res = eng.ledger.reserve(rec.id, amount, model=rec.model, provider=rec.provider, agent_id=rec.agent_id)
    except BudgetExceeded as exc:
        raise ProxyError(402, exc.message, code=exc.code, body=budget_error_body(exc, shape_of(rec.api))) from None
    rec.reserved_micros = amount
    return res
