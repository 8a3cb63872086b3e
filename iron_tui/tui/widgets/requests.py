"""The live requests table: newest first, rebuilt (at most ~10 times a second) from the view model."""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from iron_tui.tui.model import fmt_cost, fmt_ms, fmt_time, fmt_tokens, status_text

# (key, label, shown when narrow)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("time", "Time", True),
    ("id", "ID", False),
    ("model", "Model", True),
    ("provider", "Provider", False),
    ("translated", "↔", True),
    ("stream", "Stream", False),
    ("status", "Status", True),
    ("latency", "Latency", True),
    ("ttft", "TTFT", False),
    ("in", "In", False),
    ("out", "Out", False),
    ("cost", "Cost", True),
)
WIDE_ONLY = {"id"}  # shown only when there is room for it too
WIDE_MIN_WIDTH = 130


class RequestsTable(DataTable[Any]):
    """Renders request summaries; the screen decides which rows and when."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.layout_kind = ""
        self.refreshes = 0  # how many times the rows were rebuilt (the burst test reads it)
        self._colors: dict[str, Style] = {}

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._load_colors())
        self._load_colors()

    def _load_colors(self) -> None:
        # DataTable cells are Rich text, which cannot resolve $variables: resolve them from the theme.
        v = self.app.theme_variables
        self._colors = {name: Style(color=v.get(f"text-{name}")) for name in ("error", "warning", "success",
                                                                              "accent", "primary")}

    def columns_for(self, kind: str) -> list[tuple[str, str]]:
        return [
            (key, label)
            for key, label, narrow_ok in COLUMNS
            if (kind != "narrow" or narrow_ok) and (kind == "wide" or key not in WIDE_ONLY)
        ]

    def show(self, rows: list[dict[str, Any]], kind: str) -> None:
        """Replace the rows, keeping the cursor on the same request (or on the newest when it was there)."""
        selected: str | None = None
        if self.row_count and self.cursor_row > 0:
            try:
                selected = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
            except Exception:
                selected = None
        if kind != self.layout_kind:
            self.clear(columns=True)
            for key, label in self.columns_for(kind):
                self.add_column(label, key=key)
            self.layout_kind = kind
        else:
            self.clear()
        keys = [k for k, _ in self.columns_for(kind)]
        for r in rows:
            # Row keys are request ids, so the cursor and Enter find the request again.
            self.add_row(*self._cells(r, keys), key=r["id"])
        self.refreshes += 1
        if selected is not None:
            try:
                self.move_cursor(row=self.get_row_index(selected), animate=False)
            except RowDoesNotExist:
                pass

    def _cells(self, r: dict[str, Any], keys: list[str]) -> list[Any]:
        c = self._colors
        pending = r.get("state") == "pending"
        values: dict[str, Any] = {
            "time": fmt_time(r["started_at"]),
            "id": r["id"],
            "model": r["model"],
            "provider": r["provider"],
            "translated": Text("↔", style=c["accent"]) if r.get("translated") else "",
            "stream": "yes" if r.get("stream") else "",
            "status": self._status(r),
            "latency": Text(fmt_ms(r.get("latency_ms")), justify="right"),
            "ttft": Text(fmt_ms(r.get("ttft_ms")), justify="right"),
            "in": Text("" if pending else fmt_tokens(r.get("input_tokens")), justify="right"),
            "out": Text("" if pending else fmt_tokens(r.get("output_tokens")), justify="right"),
            "cost": self._cost(r),
        }
        return [values[k] for k in keys]

    def _status(self, r: dict[str, Any]) -> Text:
        text = status_text(r)
        if r.get("state") == "error" or (r.get("status") or 0) >= 400:
            return Text(text, style=self._colors["error"])
        if r.get("state") == "pending":
            return Text(text, style=self._colors["primary"])
        return Text(text, style=self._colors["success"])

    def _cost(self, r: dict[str, Any]) -> Text:
        text = fmt_cost(r)
        style = self._colors["warning"] if text == "unpriced" or text.startswith("~") else Style()
        return Text(text, style=style, justify="right")

    def selected_request_id(self) -> str | None:
        if not self.row_count:
            return None
        try:
            value = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None
        return str(value) if value is not None else None
