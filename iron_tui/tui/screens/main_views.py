"""What the dashboard shows, built from its state: the layout for a width, the header's facts, the
request list's titles and its empty-list hint, and the toasts for budget alerts and notices. Plain
functions: the screen's handlers put their results on its widgets."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.content import Content
from textual.notifications import SeverityLevel

from iron_tui.config import mask_secret
from iron_tui.core.events import CostAlert, Notice
from iron_tui.core.filter_expr import Filter
from iron_tui.core.units import count, money
from iron_tui.tui.model import RequestStore, Sort
from iron_tui.tui.widgets.panels import HeaderInfo
from iron_tui.tui.widgets.requests import WIDE_MIN_WIDTH

if TYPE_CHECKING:
    from iron_tui.tui.app import IronApp

NARROW_BELOW = 100  # columns; below this secondary columns and panels are hidden
_NOTICE_SEVERITY: dict[str, SeverityLevel] = {"info": "information", "warning": "warning", "error": "error"}


def layout_kind(width: int) -> str:
    if width < NARROW_BELOW:
        return "narrow"
    return "wide" if width >= WIDE_MIN_WIDTH else "normal"


def _proxy_url(app: IronApp, unknown: str) -> str:
    """The URL agents are pointed at; `unknown` until the proxy has a port."""
    engine = app.engine
    return app.display_url or (engine.openai_base_url if engine.port else unknown)


def header_info(app: IronApp, paused: bool, unseen: int) -> HeaderInfo:
    engine = app.engine
    feed = getattr(engine, "feed", None)
    return HeaderInfo(
        mode=engine.mode,
        url=_proxy_url(app, "starting…"),
        token=mask_secret(engine.token) or "",
        uptime_s=app.clock.now() - engine.started_at,
        feed_clients=feed.client_count if feed is not None else 0,
        drops=engine.bus.dropped,
        paused=paused,
        unseen=unseen,
    )


def empty_list_text(app: IronApp, filtered: bool, cleared: bool) -> str:
    """What the request list says when it shows no rows."""
    if filtered:
        return "no requests match the filter (Esc clears it)"
    if cleared:
        return "cleared: u brings the list back"
    return f"no requests yet: point your agent at {_proxy_url(app, 'the proxy')} (y: the token)"


def list_titles(follow: bool, paused: bool, flt: Filter, store: RequestStore, sort: Sort, matched: int,
                shown: int) -> tuple[Content, str]:
    """The request list's border title (follow/hold/paused) and subtitle (counts, filter, sort)."""
    mode = ("[$text-success]● follow[/]" if follow else "[$text-warning]‖ hold[/] [$foreground-muted]f follows[/]")
    if paused:
        mode = "[$text-warning]paused[/] [$foreground-muted]p resumes[/]"
    parts = []
    if flt.active:
        parts.append(f"filter: {flt.text} · {matched:,} of {len(store):,}")
    else:
        parts.append(count(store.total_seen, "request"))
        if store.total_seen > len(store):
            parts.append(f"last {len(store):,} kept (H: all history)")
    if not sort.is_default:
        parts.append(f"sort: {sort.label}")
    if matched > shown:
        parts.append(f"first {shown:,} shown")
    return Content.from_markup(f"Requests  {mode}"), " · ".join(parts)


@dataclass(frozen=True)
class Toast:
    """One notification's arguments (the defaults are `notify`'s own)."""

    message: str
    severity: SeverityLevel
    title: str = ""
    timeout: float | None = None


def alert_toasts(events: Iterable[CostAlert | Notice]) -> Iterator[Toast]:
    for e in events:
        if isinstance(e, CostAlert):
            text = (f"Budget {e.severity}: {money(e.spent_micros)} of {money(e.limit_micros)} "
                    f"spent ({e.percentage:.0f}%)")
            yield Toast(text, "warning" if e.severity == "warning" else "error", title="Budget", timeout=10)
        elif isinstance(e, Notice):
            yield Toast(e.message, _NOTICE_SEVERITY[e.level])
