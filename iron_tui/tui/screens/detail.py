"""Request detail: what the agent sent, what went upstream, what came back, and what it cost."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from iron_tui.core.events import RequestRecord
from iron_tui.tui.model import fmt_cost, fmt_ms, fmt_time, status_text

TABS: tuple[tuple[str, str], ...] = (
    ("tab-request", "Request"),
    ("tab-translated-request", "Translated request"),
    ("tab-upstream", "Upstream response"),
    ("tab-translated-response", "Translated response"),
    ("tab-timing", "Timing & cost"),
    ("tab-error", "Error"),
)


def body_content(body: str | None, missing: str) -> Content:
    """Pretty-printed, highlighted JSON; other text (SSE streams, truncated bodies) as it is."""
    if body is None:
        return Content.from_markup("[$foreground-muted]$m[/]", m=missing)
    try:
        pretty = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return Content(body)
    return highlight(pretty, language="json")


class RequestDetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("left", "tab(-1)", "Prev tab", show=False),
        Binding("right", "tab(1)", "Next tab", show=False),
    ]

    def __init__(self, summary: dict[str, Any], record: RequestRecord | None, initial: str = "tab-request") -> None:
        super().__init__()
        self.summary = summary
        self.record = record
        self.initial = initial

    def compose(self) -> ComposeResult:
        s = self.summary
        route = f"{s['provider']}" + (" · translated openai→anthropic" if s.get("translated") else "")
        yield Static(
            Content.from_markup(
                "[b]$id[/]  $model  [$foreground-muted]$route[/]  status $status  $lat  $cost",
                id=s["id"], model=s["model"], route=route, status=status_text(s),
                lat=fmt_ms(s.get("latency_ms")), cost=fmt_cost(s),
            ),
            id="detail-title",
        )
        rec = self.record
        gone = "not available: this request is no longer in the in-memory history"
        bodies: dict[str, tuple[str | None, str]] = {
            "tab-request": (None if rec is None else rec.request_body, gone if rec is None else "no body recorded"),
            "tab-translated-request": (
                None if rec is None else rec.translated_request,
                gone if rec is None else "not translated: the request went upstream as sent",
            ),
            "tab-upstream": (
                None if rec is None else rec.upstream_response, gone if rec is None else "no upstream response"
            ),
            "tab-translated-response": (
                None if rec is None else rec.translated_response,
                gone if rec is None else "not translated: the upstream response was relayed as received",
            ),
        }
        with TabbedContent(initial=self.initial, id="detail-tabs"):
            for tab_id, title in TABS:
                with TabPane(title, id=tab_id), VerticalScroll():
                    if tab_id in bodies:
                        body, missing = bodies[tab_id]
                        yield Static(body_content(body, missing), classes="body")
                    elif tab_id == "tab-timing":
                        yield Static(self._timing(), classes="body")
                    else:
                        yield Static(self._error(), classes="body")
        yield Footer()

    def _timing(self) -> Content:
        s, rec = self.summary, self.record
        rows: list[tuple[str, str]] = [
            ("started", f"{fmt_time(s['started_at'])}  ({s['started_at']})"),
            ("api", f"{s.get('api', '')}  {s.get('path', '')}"),
            ("provider", s["provider"]),
            ("model", s["model"]),
            ("streamed", "yes" if s.get("stream") else "no"),
            ("translated", "yes (openai → anthropic)" if s.get("translated") else "no"),
            ("agent", s.get("agent_id") or "–"),
            ("status", status_text(s)),
            ("latency", fmt_ms(s.get("latency_ms")) or "–"),
            ("time to first token", fmt_ms(s.get("ttft_ms")) or "–"),
            ("input tokens", str(s.get("input_tokens", 0))),
            ("output tokens", str(s.get("output_tokens", 0))),
            ("cache read tokens", str(s.get("cache_read_tokens", 0))),
            ("cache write tokens", str(s.get("cache_write_tokens", 0))),
            ("cost", fmt_cost(s) or "–"),
        ]
        if s.get("cost_estimated"):
            rows.append(("", "~ estimated: the stream ended before the provider reported usage"))
        if not s.get("priced", True):
            rows.append(("", "unpriced: no known price for this model (counted, not charged)"))
        if rec is not None and rec.reserved_micros:
            rows.append(("reserved at admission", f"${rec.reserved_micros / 1_000_000:.6f}"))
        width = max(len(k) for k, _ in rows)
        return Content("\n").join(
            Content.from_markup("[$foreground-muted]$k[/]  $v", k=k.ljust(width), v=v) for k, v in rows
        )

    def _error(self) -> Content:
        s, rec = self.summary, self.record
        parts: list[Content] = []
        if s.get("error"):
            code = rec.error_code if rec is not None and rec.error_code else ""
            parts.append(Content.from_markup("[b $text-error]$err[/]", err=s["error"]))
            if code:
                parts.append(Content.from_markup("[$foreground-muted]code[/] $code", code=code))
        warnings = rec.warnings if rec is not None else []
        for w in warnings:
            parts.append(Content.from_markup("[$text-warning]warning:[/] $w", w=w))
        if not parts:
            return Content.from_markup("[$text-success]no error[/]")
        return Content("\n").join(parts)

    def action_close(self) -> None:
        self.dismiss()

    def action_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        ids = [t for t, _ in TABS]
        current = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(current + step) % len(ids)]
