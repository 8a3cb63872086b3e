"""Budget admission: book a call's worst case before it goes upstream, fitted to the budget if need be.

Runs after the pair translated the request, on the upstream body in the provider's dialect (what the
provider bills):

* the worst case is the input bound (`estimate.py`) plus the true output bound (`model_limits.py`: the
  request's cap, else the model's maximum output, else its context window) times the choices asked
  for, at the model's dearest rates, plus an allowance for server-side web searches;
* when it does not fit what is left but a useful answer does, the ledger lowers the output cap
  (`budget.py`); it is applied here to the upstream body through the provider dialect's cap field, and
  recorded (`RequestRecord.capped_max_tokens`, the `x-iron-max-tokens` header, "capped by budget");
* "useful" (`out_min`) is `budget_min_output_tokens` (1,024 by default: a short answer or a tool call
  with its arguments), or the request's own cap if smaller; with Anthropic extended thinking it is the
  1,024-token minimum thinking budget plus that, and the thinking budget is lowered with the cap so it
  stays below `max_tokens`;
* otherwise the 402 of DESIGN.md §3.

With a journal (crash-proof accounting) the admitted call gets its analytics event id now, so a crash
recovery and the normal path report it under the same id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iron_tui.core.budget import BudgetExceeded, CallInfo, budget_error_body, format_usd
from iron_tui.core.budget_state import Reservation
from iron_tui.core.dialects.client_apis import shape_of
from iron_tui.core.dialects.provider_apis import output_cap, with_output_cap
from iron_tui.core.estimate import BodyTooDeep, estimate_output_tokens_from_text, input_token_bound
from iron_tui.core.json_bytes import dumps as dumps_json
from iron_tui.core.proxy.errors import ProxyError
from iron_tui.core.request_numbers import THINKING_MIN_BUDGET

if TYPE_CHECKING:
    from iron_tui.core.engine import Engine
    from iron_tui.core.proxy.pipeline import Call

# The client API whose body shape a provider dialect's request has (what `estimate.py` understands).
_ESTIMATE_API = {"anthropic": "anthropic.messages", "openai": "openai.chat", "openai-responses": "openai.responses"}
# Web searches counted for a server-side web search tool that sets no `max_uses` (an allowance, like
# estimate.py's hosted-tool tokens: the request does not bound it).
WEB_SEARCH_ALLOWANCE = 10


def estimate_api(upstream_api: str, client_api: str, native: bool) -> str:
    return client_api if native else _ESTIMATE_API.get(upstream_api, client_api)


def choices(upstream_api: str, body: dict[str, Any]) -> int:
    """How many completions one request asks for (`n`, and `best_of` for legacy completions)."""
    if upstream_api != "openai" or ("n" not in body and "best_of" not in body):
        return 1
    n = _int(body.get("n"))
    best_of = _int(body.get("best_of"))
    return max(1, n or 1, best_of or 1)


def web_searches(body: dict[str, Any]) -> int:
    """The most server-side web searches the request may run, as admission books them: per `web_search*`
    tool its `max_uses` (Anthropic), else the allowance (an OpenAI Responses `web_search` /
    `web_search_preview` tool has no per-tool bound); a Responses `max_tool_calls` caps the total (it
    bounds every built-in tool call of the response)."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return 0
    total = 0
    for tool in tools:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind.startswith("web_search"):
            total += _int(tool.get("max_uses")) or WEB_SEARCH_ALLOWANCE
    cap = _int(body.get("max_tool_calls")) if total else None
    return total if cap is None else min(total, cap)


def worst_case(engine: Engine, provider: str, model: str, body: dict[str, Any], api: str, upstream_api: str,
               raw: bytes | None = None) -> int | None:
    """The call's worst-case cost as admission books it (None: unpriced, or nothing bounds the output)."""
    try:
        bound = input_token_bound(body, api, raw)
    except BodyTooDeep:
        return None
    per_choice = engine.limits.output_bound(provider, model, bound, output_cap(upstream_api, body))
    if per_choice is None:
        return None
    return engine.pricer.worst_case(provider, model, bound, per_choice * choices(upstream_api, body),
                                    cache_writes=_may_write_cache(upstream_api, body, raw),
                                    web_searches=web_searches(body))


def admit(engine: Engine, call: Call, body: dict[str, Any], send_body: bytes) -> tuple[Reservation, bytes]:
    """Book the call in the ledger; returns the reservation and the bytes to send upstream (with a lowered
    output cap when the call was fitted to the budget). `send_body`: `body` as JSON (the client's bytes
    for a native call, the pair's serialised body otherwise)."""
    eng = engine
    rec = call.rec
    if eng.lease_error is not None and eng.ledger.limit is None:
        raise ProxyError(503, f"no budget lease from the Iron Cage server yet: {eng.lease_error}",
                         code="budget_lease_unavailable")
    info = None
    if eng.ledger.journaling:
        rec.event_id = eng.ids.event_id()
        info = CallInfo(rec.api, rec.event_id, estimate_output_tokens_from_text(len(send_body)))
    if eng.pricer.rates(rec.provider, rec.model) is None:
        rec.priced = False
        if eng.pricer.strict:
            raise ProxyError(
                400, f"model {rec.model!r} has no known price and strict pricing is on (--strict-pricing)",
                param="model", code="unpriced_model",
            )
        return _booked(rec, eng.ledger.reserve(rec.id, 0, model=rec.model, provider=rec.provider,
                                               agent_id=rec.agent_id, call=info)), send_body
    api = estimate_api(call.upstream_api, call.client_api, call.native)
    try:
        bound = input_token_bound(body, api, send_body)  # (send_body is always `body`'s JSON)
    except BodyTooDeep as exc:
        raise ProxyError(400, exc.message, code=exc.code) from None
    upstream_api = call.upstream_api
    n = choices(upstream_api, body)
    searches = web_searches(body)
    per_choice = eng.limits.output_bound(rec.provider, rec.model, bound, output_cap(upstream_api, body))
    pricer, provider, model = eng.pricer, rec.provider, rec.model
    writes = _may_write_cache(upstream_api, body, send_body)

    def cost_for(out: int) -> int:
        return pricer.worst_case(provider, model, bound, out * n, cache_writes=writes, web_searches=searches) or 0

    useful = eng.settings.budget_min_output_tokens
    thinking = _thinking_budget(upstream_api, body)
    out_min = useful if thinking is None else THINKING_MIN_BUDGET + useful
    if per_choice is not None:
        out_min = min(out_min, per_choice)
    try:
        res = eng.ledger.admit(rec.id, cost_for=cost_for, out_max=per_choice, out_min=out_min, model=model,
                               provider=provider, agent_id=rec.agent_id, call=info)
    except BudgetExceeded as exc:
        raise ProxyError(402, exc.message, code=exc.code, body=budget_error_body(exc, shape_of(rec.api))) from None
    _booked(rec, res)
    rec.max_output_tokens = (res.capped if res.capped is not None else per_choice or 0) * n
    if res.capped is None:
        return res, send_body
    rec.capped_max_tokens = res.capped
    spec = eng.providers.specs.get(rec.provider)
    capped = with_output_cap(upstream_api, body, res.capped, spec.cap_field if spec is not None else "max_tokens")
    if thinking is not None:
        capped["thinking"] = {**body["thinking"], "budget_tokens": _lowered_thinking(thinking, res.capped, useful)}
    left = eng.ledger.available
    rec.warnings.append(f"capped by budget: max output tokens lowered to {res.capped} so the call fits what is "
                        f"left of the budget (${format_usd(res.amount + (left or 0))} before this call)")
    return res, dumps_json(capped)


def _may_write_cache(upstream_api: str, body: dict[str, Any], raw: bytes | None) -> bool:
    """Only an Anthropic request with `cache_control` can write a cache (billed above the input rate)."""
    if upstream_api != "anthropic":
        return True  # OpenAI bills no writes (its write rate is the input rate): no difference
    if raw is None:
        raw = dumps_json(body)
    return raw.find(b"cache_control") >= 0


def _booked(rec: Any, res: Reservation) -> Reservation:
    rec.reserved_micros = res.amount
    return res


def _thinking_budget(upstream_api: str, body: dict[str, Any]) -> int | None:
    """Anthropic extended thinking's budget, when the request enables it."""
    if upstream_api != "anthropic":
        return None
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    return _int(thinking.get("budget_tokens"))


def _lowered_thinking(budget: int, cap: int, useful: int) -> int:
    """A thinking budget that leaves `useful` tokens of answer under `cap` (never below Anthropic's
    minimum; `cap` ≥ that minimum + 1 by construction of `out_min`)."""
    return max(THINKING_MIN_BUDGET, min(budget, cap - useful, cap - 1))


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None
