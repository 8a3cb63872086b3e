"""How the dashboard reaches the request detail screens: opening one for a call, and passing each
call's updates to the detail screens that show it (by message: they own their widgets)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iron_tui.tui.messages import CallUpdated
from iron_tui.tui.model import RequestStore

if TYPE_CHECKING:
    from iron_tui.tui.app import IronApp


def open_detail(app: IronApp, store: RequestStore, request_id: str, tab: str | None = None) -> None:
    from iron_tui.tui.screens.detail import RequestDetailScreen

    summary = store.get(request_id)
    record = app.engine.history.get(request_id)
    if summary is None and record is not None:
        summary = record.summary()
    if summary is None:
        app.notify(f"request {request_id} is no longer available", severity="warning")
        return
    app.push_screen(RequestDetailScreen(summary, record, tab))


def tell_detail_screens(app: IronApp, rows: list[dict[str, Any]]) -> None:
    watched = {getattr(s, "request_id", None): s for s in app.screen_stack if hasattr(s, "request_id")}
    if not watched:
        return
    for r in rows:
        screen = watched.get(r["id"])
        if screen is not None:
            screen.post_message(CallUpdated(r))
