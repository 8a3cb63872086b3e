"""Exporting this session's calls (E on the dashboard): from the on-disk history, with the bodies the
memory still holds, through the same filter as the live list."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from iron_tui.core.filter_expr import Filter

if TYPE_CHECKING:
    from iron_tui.tui.app import IronApp


def text_of(rec: Any) -> Callable[[], str]:
    """A recorded call's bodies as one text, for free-text filters (built only when asked)."""
    return lambda: "\n".join(b for b in (rec.request_body, rec.translated_request, rec.upstream_response,
                                         rec.translated_response) if b)


def export_session(app: IronApp, flt: Filter) -> None:
    scope = (f"this session's calls matching `{flt.text}`" if flt.active else "every call of this session")
    stem = time.strftime("iron-tui-%Y%m%d-%H%M%S", time.localtime(app.clock.now()))
    app.export_calls(lambda: session_calls(app, flt), scope, stem)


def session_calls(app: IronApp, flt: Filter) -> list[tuple[dict[str, Any], Any]]:
    """This session's finished calls from the on-disk history (a worker thread calls this), with
    their bodies where still held; free text searches those bodies, as the live filter does."""
    engine = app.engine
    engine.history.flush()
    out = []
    for summary in app.history_reader.iter_session(engine.session_id):
        summary.pop("session", None)
        record = engine.history.get(summary["id"])
        body = None if record is None else text_of(record)
        if flt.matches(summary, body):
            out.append((summary, record))
    return out
