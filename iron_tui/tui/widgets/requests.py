"""The live requests table: newest first, drawn line by line from the view model.

A Line-API widget rather than a DataTable: under load the rows are replaced up to ten times a
second, and a DataTable rebuild re-renders every visible cell through Rich each time (~100 ms for a
screenful). Here a row is a handful of Segments, cached per request, and only visible rows are drawn,
so a refresh costs a few milliseconds however busy the proxy is.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from iron_tui.tui.model import fmt_cost, fmt_ms, fmt_time, fmt_tokens, status_text

# (key, label, width (0 = the flexible model column), right-aligned, shown when narrow)
COLUMNS: tuple[tuple[str, str, int, bool, bool], ...] = (
    ("time", "Time", 8, False, True),
    ("id", "ID", 10, False, False),
    ("model", "Model", 0, False, True),
    ("provider", "Provider", 9, False, False),
    ("translated", "↔", 1, False, True),
    ("stream", "Stream", 6, False, False),
    ("status", "Status", 6, False, True),
    ("latency", "Latency", 7, True, True),
    ("ttft", "TTFT", 6, True, False),
    ("in", "In", 6, True, False),
    ("out", "Out", 6, True, False),
    ("cost", "Cost", 10, True, True),
)
WIDE_ONLY = {"id"}  # shown only when there is room for it too
WIDE_MIN_WIDTH = 130
MODEL_MIN, MODEL_MAX = 10, 30
GAP = 2
CACHE_ROWS = 600

_PARTS = ("header", "cursor", "error", "ok", "pending", "warn", "accent", "hint")


class RequestsTable(ScrollView, can_focus=True):
    """Shows the rows it is given (`show`); up/down move the cursor, Enter or a double click opens."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Details"),
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"requests-table--{p}" for p in _PARTS}

    class Selected(Message):
        """Enter (or a double click) on a row."""

        def __init__(self, request_id: str) -> None:
            super().__init__()
            self.request_id = request_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layout_kind = "normal"
        self.refreshes = 0  # how many times the rows were replaced (the burst test reads it)
        self.rows: list[dict[str, Any]] = []
        self.empty_text = "no requests yet"  # shown when there are no rows
        self.cursor_row = 0
        self._index: dict[str, int] = {}
        self._cache: OrderedDict[tuple[Any, ...], Strip] = OrderedDict()
        self._styles: dict[tuple[str, str | None], Style] = {}
        self._columns: list[tuple[str, str, int, bool]] = []
        self._columns_for: tuple[str, int] = ("", -1)

    # --- data -------------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def show(self, rows: list[dict[str, Any]], kind: str) -> None:
        """Replace the rows, keeping the cursor on the same request (or on the newest when it was there)."""
        selected = self.selected_request_id() if self.cursor_row > 0 else None
        self.rows = rows
        self._index = {r["id"]: i for i, r in enumerate(rows)}
        if kind != self.layout_kind:
            self.layout_kind = kind
            self._cache.clear()
        self.cursor_row = self._index.get(selected, 0) if selected is not None else 0
        self._set_virtual_height(len(rows) + 1)
        self.refreshes += 1
        self._scroll_cursor_into_view()
        self.refresh()

    def _set_virtual_height(self, height: int) -> None:
        size = Size(self.size.width, height)
        if size == self.virtual_size:
            return
        # Assigning virtual_size lays out the whole screen (tens of ms); while the table fills up that
        # would happen at every refresh. Only the scrollbar depends on it, so update just that (a
        # scrollbar appearing or going still triggers a layout, through show_vertical_scrollbar).
        self.set_reactive(RequestsTable.virtual_size, size)
        self._scroll_update(size)

    def selected_request_id(self) -> str | None:
        if 0 <= self.cursor_row < len(self.rows):
            return str(self.rows[self.cursor_row]["id"])
        return None

    def row_texts(self, index: int) -> list[str]:
        """The visible cell texts of a row (tests and accessibility)."""
        return [self._cell(self.rows[index], key)[0] for key, *_ in self._layout(self.size.width)]

    # --- cursor -----------------------------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        if not self.rows:
            self.cursor_row = 0
            return
        self.cursor_row = max(0, min(len(self.rows) - 1, row))
        self._scroll_cursor_into_view()
        self.refresh()

    def _scroll_cursor_into_view(self) -> None:
        if self.rows and self.size.height > 1:
            # Line 0 is the fixed header, so row i lives at virtual line i + 1.
            self.scroll_to_region(Region(0, self.cursor_row, 1, 2), animate=False, force=True)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_page(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        self.move_cursor(len(self.rows) - 1 if where < 0 else 0)

    def action_open(self) -> None:
        rid = self.selected_request_id()
        if rid is not None:
            self.post_message(self.Selected(rid))

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        row = int(self.scroll_offset.y) + event.y - 1
        if 0 <= row < len(self.rows):
            self.move_cursor(row)
            if event.chain >= 2:
                self.action_open()

    # --- rendering --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    def on_focus(self, _: events.Focus) -> None:
        self.refresh()  # the cursor row is highlighted only while the table has focus

    def on_blur(self, _: events.Blur) -> None:
        self.refresh()

    def _restyle(self) -> None:
        self._styles.clear()
        self._cache.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cache.clear()

    def _style(self, row: str, cell: str | None = None) -> Style:
        """The style of a cell: the row's (plain, header or cursor) plus the cell's colour, cached."""
        style = self._styles.get((row, cell))
        if style is None:
            style = self.rich_style
            if row:
                style += self.get_component_rich_style(f"requests-table--{row}")
            if cell:
                style += self.get_component_rich_style(f"requests-table--{cell}", partial=True)
            self._styles[(row, cell)] = style
        return style

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.rows) + 1)
        self._cache.clear()
        self._scroll_cursor_into_view()

    def _layout(self, width: int) -> list[tuple[str, str, int, bool]]:
        if self._columns_for == (self.layout_kind, width):
            return self._columns
        kind = self.layout_kind
        cols = [(k, label, w, right) for k, label, w, right, narrow_ok in COLUMNS
                if (kind != "narrow" or narrow_ok) and (kind == "wide" or k not in WIDE_ONLY)]
        fixed = sum(w + GAP for _, _, w, _ in cols if w) + GAP + 1
        model = max(MODEL_MIN, min(MODEL_MAX, width - fixed))
        self._columns = [(k, label, w or model, right) for k, label, w, right in cols]
        self._columns_for = (kind, width)
        return self._columns

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return self._header(width)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.rows):
            if not self.rows and y == 2:
                style = self._style("", "hint")
                return Strip([Segment(" " + self.empty_text, style)]).adjust_cell_length(width, self.rich_style)
            return Strip.blank(width, self.rich_style)
        r = self.rows[index]
        # No zebra stripes: rows shift by one with every new call, and a stripe tied to the position
        # would change every cached row at every refresh.
        part = "cursor" if index == self.cursor_row and self.has_focus else ""
        key = (r["id"], r.get("state"), part, width, self.layout_kind)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._row(r, width, part)
            self._cache[key] = strip
            if len(self._cache) > CACHE_ROWS:
                self._cache.popitem(last=False)
        return strip

    def _header(self, width: int) -> Strip:
        return self._strip([(label, None) for _, label, _, _ in self._layout(width)], width, "header")

    def _row(self, r: dict[str, Any], width: int, part: str) -> Strip:
        cells = [self._cell(r, key) for key, *_ in self._layout(width)]
        if part == "cursor":  # the cursor row is one colour, so it reads as a bar
            cells = [(text, None) for text, _ in cells]
        return self._strip(cells, width, part)

    def _strip(self, cells: list[tuple[str, str | None]], width: int, row: str) -> Strip:
        base = self._style(row)
        gap = Segment(" " * GAP, base)
        segments = [Segment(" ", base)]
        for (text, cell), (_, _, w, right) in zip(cells, self._layout(width), strict=True):
            n = cell_len(text)
            if n > w:
                text, n = set_cell_size(text, w - 1) + "…", w
            text = " " * (w - n) + text if right else text + " " * (w - n)
            segments.append(Segment(text, self._style(row, cell) if cell else base))
            segments.append(gap)
        return Strip(segments).adjust_cell_length(width, base)

    def _cell(self, r: dict[str, Any], key: str) -> tuple[str, str | None]:
        pending = r.get("state") == "pending"
        if key == "time":
            return fmt_time(r["started_at"]), None
        if key in ("id", "model", "provider"):
            return str(r.get(key) or ""), None
        if key == "translated":
            return ("↔", "accent") if r.get("translated") else ("", None)
        if key == "stream":
            return ("yes" if r.get("stream") else ""), None
        if key == "status":
            failed = r.get("state") == "error" or (r.get("status") or 0) >= 400
            return status_text(r), "error" if failed else ("pending" if pending else "ok")
        if key == "latency":
            return fmt_ms(r.get("latency_ms")), None
        if key == "ttft":
            return fmt_ms(r.get("ttft_ms")), None
        if key in ("in", "out"):
            return ("" if pending else fmt_tokens(r.get("input_tokens" if key == "in" else "output_tokens"))), None
        cost = fmt_cost(r)
        return cost, "warn" if cost == "unpriced" or cost.startswith("~") else None
