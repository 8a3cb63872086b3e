"""What each tab of the request detail shows, built from the summary and the recorded call."""

from __future__ import annotations

import json
from typing import Any

from textual.containers import VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.widget import Widget
from textual.widgets import Static

from iron_tui.core.conversation import CallView
from iron_tui.core.explain import CostBreakdown, ErrorExplanation
from iron_tui.core.filter_match import aliased, fell_back, status_text
from iron_tui.core.stats import first_token_ms
from iron_tui.core.textdiff import json_lines, side_by_side
from iron_tui.core.transcript import transcript_lines
from iron_tui.core.units import call_cost, duration_ms, money, tokens
from iron_tui.tui.safe import safe_text
from iron_tui.tui.timefmt import clock_time
from iron_tui.tui.widgets.conversation import ConversationView
from iron_tui.tui.widgets.diff import DiffView

GONE = ("not available: the bodies of only the last calls are kept in memory (history_size); "
        "the on-disk history keeps each call's summary")
DIALECT_LABEL = {"openai.chat": "OpenAI chat", "openai.responses": "OpenAI Responses",
                 "anthropic.messages": "Anthropic Messages", "unknown": "?"}


def muted(text: str) -> Content:
    return Content.from_markup("[$foreground-muted]$t[/]", t=text)


def body_content(body: str | None, missing: str) -> Content:
    """Pretty-printed, highlighted JSON; other text (SSE streams, cut bodies) as it is, made safe."""
    if body is None:
        return muted(missing)
    try:
        pretty = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return Content(safe_text(body))
    return highlight(safe_text(pretty), language="json")


def scroll(*children: Widget, classes: str = "pane") -> VerticalScroll:
    return VerticalScroll(*children, classes=classes)


def route_text(summary: dict[str, Any], record: Any) -> str:
    route = str(summary.get("provider") or "")
    if summary.get("translated"):
        upstream = getattr(record, "upstream_api", None) or summary.get("provider")
        route += f" · translated {summary.get('api')} → {upstream}"
    return route


# --- conversation ---------------------------------------------------------------------------------


def _side_label(prefix: str, dialect: str | None) -> str:
    return f"{prefix} ({DIALECT_LABEL.get(dialect or '', dialect or '?')})"


def conversation_pane(summary: dict[str, Any], record: Any, view: CallView | None, *, side_by_side_mode: bool,
                      unfold: bool) -> Widget:
    if record is None or view is None:
        return scroll(Static(muted(GONE)))
    if summary.get("translated") and side_by_side_mode and view.upstream_request is not None:
        left = transcript_lines(view.request, unfold) + transcript_lines(view.response, unfold)
        right = transcript_lines(view.upstream_request, unfold) + transcript_lines(view.upstream_response, unfold)
        client = view.request.dialect if view.request else None
        return DiffView(side_by_side(left, right), _side_label("the agent sent and got", client),
                        _side_label("went upstream and came back", view.upstream_request.dialect),
                        classes="pane diff")
    empty = "in flight: no answer yet" if summary.get("state") == "pending" else "no body recorded"
    return scroll(ConversationView(view.request, view.response, unfold_thinking=unfold, empty=empty))


def request_pane(summary: dict[str, Any], record: Any) -> Widget:
    if record is None:
        return scroll(Static(muted(GONE)))
    if summary.get("translated") and record.translated_request is not None:
        return DiffView(side_by_side(json_lines(record.request_body), json_lines(record.translated_request)),
                        f"the agent's request ({summary.get('api')})",
                        f"sent upstream ({getattr(record, 'upstream_api', None) or summary.get('provider')})",
                        classes="pane diff")
    return scroll(Static(body_content(record.request_body, "no body recorded"), classes="body"))


def response_pane(summary: dict[str, Any], record: Any, error: ErrorExplanation | None) -> Widget:
    if record is None:
        return scroll(Static(muted(GONE)))
    if summary.get("state") == "pending":
        return scroll(Static(muted("in flight: no answer yet (this view updates when it finishes)")))
    if summary.get("translated") and record.translated_response is not None and record.upstream_response:
        return DiffView(side_by_side(json_lines(record.translated_response), json_lines(record.upstream_response)),
                        f"what the agent got ({summary.get('api')})",
                        f"what the provider sent ({getattr(record, 'upstream_api', None) or summary.get('provider')})",
                        classes="pane diff")
    body = record.translated_response if summary.get("translated") else record.upstream_response
    if body is None and error is not None and error.client_body is not None:
        note = "iron-tui answered this itself (nothing went upstream); the agent received:"
        return scroll(Static(muted(note)), Static(body_content(error.client_body, ""), classes="body"))
    return scroll(Static(body_content(body, "no response body recorded"), classes="body"))


# --- cost and timing ------------------------------------------------------------------------------


def _rate(v: float | None) -> str:
    """USD per million tokens, with at least two decimals: $0.80, $2.50, $0.075."""
    if v is None:
        return "unpriced"
    whole, _, frac = f"{v:,.4f}".partition(".")
    return f"${whole}.{frac.rstrip('0').ljust(2, '0')}/Mtok"


def cost_content(summary: dict[str, Any], record: Any, b: CostBreakdown) -> Content:
    rows: list[tuple[str, str]] = []
    for line in b.lines:
        if line.tokens or line.label in ("input", "output"):
            value = f"{tokens(line.tokens)} × {_rate(line.usd_per_mtok)}"
            if line.micros is not None:
                value += f" = {money(line.micros)}"
            rows.append((line.label, value))
    total = call_cost(summary) or ("in flight" if summary.get("state") == "pending" else "–")
    rows.append(("total", total + (" (estimated: usage did not arrive)" if b.estimated else "")))
    if not b.priced:
        rows.append(("", "unpriced: no known price for this model (counted, not charged)"))
    if b.price_source:
        rows.append(("price from", b.price_source))
    rows.append(("reserved at admission", money(b.reserved_micros)))
    rows.append(("settlement", b.settlement))
    if b.capped_max_tokens:
        rows.append(("capped by budget", f"output cap lowered to {tokens(b.capped_max_tokens)} tokens to fit"))
    rows.append(("", ""))
    started = str(summary.get("started_at") or "")
    rows += [
        ("started", f"{clock_time(started)}  ({started})"),
        ("api", f"{summary.get('api', '')}  {summary.get('path', '')}"),
        ("model", str(summary.get("model"))),
        *_asked_for(summary),
        ("route", route_text(summary, record)),
        ("agent", str(summary.get("agent_id") or "–")),
        ("status", status_text(summary)),
        ("latency", duration_ms(summary.get("latency_ms")) or "–"),
    ]
    if summary.get("stream"):
        rows.append(("time to first token", duration_ms(first_token_ms(summary)) or "–"))
    rows.append(("tokens per second", "–" if b.tokens_per_s is None else f"{b.tokens_per_s:,.1f}"))
    rows.append(("stop reason", b.stop_reason or "–"))
    # Retries and fallbacks (issue 16): each upstream try.
    for i, a in enumerate(getattr(record, "attempts", None) or (), 1):
        what = f"{a.provider} {a.model} · {a.status if a.status is not None else 'no answer'} · "
        what += f"{duration_ms(a.duration_ms)} · " + ((a.error or a.error_type) if a.error_type else "served")
        if a.waited_ms:
            what += f" · waited {duration_ms(a.waited_ms)}"
        rows.append((f"try {i}", what))
    for key, label in (("interrupted", "interrupted"), ("thinking_tokens", "thinking tokens")):
        if summary.get(key):  # not in the summary yet: drawn when it lands
            rows.append((label, str(summary[key])))
    width = max(len(k) for k, _ in rows)
    return Content("\n").join(
        Content.from_markup("[$foreground-muted]$k[/]  $v", k=k.ljust(width), v=safe_text(v)) for k, v in rows)


def _asked_for(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The name the client sent, when another model served the call (an alias, NAME/, a fallback)."""
    asked = summary.get("client_model")
    if not asked:
        return []
    why = "a fallback served it" if fell_back(summary) else "an alias" if aliased(summary) else "NAME/model"
    return [("asked for", f"{asked}  ({why})")]


# --- error ----------------------------------------------------------------------------------------


def error_pane(summary: dict[str, Any], record: Any, e: ErrorExplanation | None) -> Widget:
    warnings = list(getattr(record, "warnings", None) or [])
    parts: list[Widget] = []
    if e is None:
        parts.append(Static(Content.from_markup("[$text-success]no error[/]" if summary.get("state") != "pending"
                                                else "[$foreground-muted]in flight[/]")))
    else:
        who = ("the provider answered with an error" if e.origin == "provider"
               else "settled by crash recovery when iron-tui next started" if e.code == "interrupted"
               else "iron-tui answered this itself")
        rows = [
            Content.from_markup("[b $text-error]$h[/]", h=safe_text(e.headline)),
            muted(who),
            Content(""),
            Content(safe_text(e.message)),
        ]
        if e.code:
            rows.append(Content.from_markup("[$foreground-muted]code[/]  $c", c=safe_text(e.code)))
        if e.retry_after_s is not None:
            rows.append(Content.from_markup("[$foreground-muted]retry after[/]  [b]$s[/]",
                                            s=duration_ms(e.retry_after_s * 1000)))
        rows += [Content(""), Content.from_markup("[b]what to do:[/] $a", a=e.advice)]
        parts.append(Static(Content("\n").join(rows)))
        if e.client_body is not None:
            how = "rebuilt from the record" if e.client_body_rebuilt else "as recorded"
            parts.append(Static(muted(f"\nthe answer the agent received ({how}):")))
            parts.append(Static(body_content(e.client_body, ""), classes="body"))
    for w in warnings:
        parts.append(Static(Content.from_markup("[$text-warning]warning:[/] $w", w=safe_text(w))))
    return scroll(*parts)
