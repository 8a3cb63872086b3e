"""The requests table: rows as the view model orders them, a selection that stays put, follow mode.

A Line-API widget rather than a DataTable: under load the rows are replaced up to ten times a
second, and a DataTable rebuild re-renders every visible cell through Rich each time (~100 ms for a
screenful). Here a row is a handful of Segments, cached per request, and only visible rows are drawn.

Selection is by request id, not by position: new calls arriving above the selected row move the
viewport with it, so the highlighted row is the one Enter opens. In follow mode the selection
tracks the newest call; moving the cursor leaves follow mode (`f` or Home returns to it).
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

from iron_tui.core.filter_match import aliased, fell_back, is_failed, status_text, tries
from iron_tui.core.stats import first_token_ms
from iron_tui.core.units import call_cost, duration_ms, tokens_short
from iron_tui.tui.model import Sort
from iron_tui.tui.safe import safe_line
from iron_tui.tui.timefmt import clock_time

# (key, label, width (0 = the flexible model column), right-aligned, layouts it shows in)
COLUMNS: tuple[tuple[str, str, int, bool, str], ...] = (
    ("time", "Time", 8, False, "nNw"),
    ("id", "ID", 10, False, "w"),
    ("model", "Model", 0, False, "nNw"),
    ("provider", "Provider", 9, False, "Nw"),
    ("agent", "Agent", 12, False, "w"),
    ("flags", "", 3, False, "nNw"),
    ("status", "Status", 6, False, "nNw"),
    ("latency", "Latency", 7, True, "nNw"),
    ("ttft", "TTFT", 7, True, "Nw"),
    ("in", "In", 6, True, "Nw"),
    ("out", "Out", 6, True, "Nw"),
    ("cost", "Cost", 10, True, "nNw"),
)
_KIND_CODE = {"narrow": "n", "normal": "N", "wide": "w"}
SORT_OF_COLUMN = {"time": "time", "model": "model", "provider": "provider", "status": "status",
                  "latency": "latency", "ttft": "ttft", "in": "tokens", "out": "tokens", "cost": "cost"}
WIDE_MIN_WIDTH = 160
MODEL_MIN, MODEL_MAX = 10, 48
GAP = 2
CACHE_ROWS = 1200
# The flags column: what a call went through, one character each (the help screen explains them).
FLAG_MARKS: tuple[tuple[str, str], ...] = (
    ("↔", "translated between APIs"), ("»", "streamed"), ("⇣", "output capped to fit the budget"),
    ("↻", "retried"), ("↪", "served by a fallback model (the model shown; Cost lists each try)"),
    ("≈", "the model the client named is an alias of the one shown"),
    ("!", "interrupted (settled after a crash)"), ("θ", "with thinking"),
)
_PARTS = ("header", "cursor", "cursor-error", "marker", "error-row", "error", "ok", "pending", "warn",
          "accent", "hint", "muted")


def flags_of(r: dict[str, Any]) -> str:
    marks = []
    if r.get("translated"):
        marks.append("↔")
    if r.get("stream"):
        marks.append("»")
    if r.get("capped") is True or (r.get("capped_max_tokens") or 0) > 0:
        marks.append("⇣")
    if fell_back(r):
        marks.append("↪")
    elif tries(r) > 1:
        marks.append("↻")
    if aliased(r):
        marks.append("≈")
    if r.get("interrupted") is True:
        marks.append("!")
    if (r.get("thinking_tokens") or 0) > 0:
        marks.append("θ")
    return "".join(marks)


def clip_middle(text: str, width: int) -> str:
    """Cut the middle, not the end: model names differ in their tails (dates, sizes)."""
    if cell_len(text) <= width:
        return text
    if width < 8:
        return set_cell_size(text, width - 1) + "…"
    tail = (width - 1) // 2
    head = width - 1 - tail
    return text[:head] + "…" + text[-tail:]


class RequestsTable(ScrollView, can_focus=True):
    """Shows the rows it is given (`show`); keys move the selection, Enter or a double click opens."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", tooltip="the selected request's detail"),
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "Newest", show=False),
        Binding("end", "jump(-1)", "Oldest", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"requests-table--{p}" for p in _PARTS}

    class Selected(Message):
        """Enter (or a double click) on a row."""

        def __init__(self, request_id: str) -> None:
            super().__init__()
            self.request_id = request_id

    class FollowChanged(Message):
        def __init__(self, follow: bool) -> None:
            super().__init__()
            self.follow = follow

    class SortRequested(Message):
        """A click on a column header."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, time_format: str = "time", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layout_kind = "normal"
        self.time_format = time_format  # "time" (HH:MM:SS) or "date" (MM-DD HH:MM:SS, for history)
        self.refreshes = 0  # how many times the rows were replaced (the burst test reads it)
        self.rows: list[dict[str, Any]] = []
        self.empty_text = "no requests yet"
        self.cursor_row = 0
        self.selected_id: str | None = None
        self.follow = True
        self.followable = True  # False for lists that do not grow (the history browser)
        self.sort = Sort()
        self._index: dict[str, int] = {}
        self._cache: OrderedDict[tuple[Any, ...], Strip] = OrderedDict()
        self._styles: dict[tuple[tuple[str, ...], str | None], Style] = {}
        self._columns: list[tuple[str, str, int, bool]] = []
        self._columns_for: tuple[str, int, str] = ("", -1, "")

    # --- data -------------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def show(self, rows: list[dict[str, Any]], kind: str, newest_id: str | None = None) -> None:
        """Replace the rows. Following: select the newest call. Else keep the selected call selected,
        at the same place on screen."""
        old_row, old_top = self.cursor_row, int(self.scroll_offset.y)
        self.rows = rows
        self._index = {r["id"]: i for i, r in enumerate(rows)}
        if kind != self.layout_kind:
            self.layout_kind = kind
            self._cache.clear()
        if self.follow:
            row = self._index.get(newest_id, 0) if newest_id is not None else 0
        else:
            found = self._index.get(self.selected_id) if self.selected_id is not None else None
            row = found if found is not None else min(old_row, max(0, len(rows) - 1))
        self.cursor_row = row
        self.selected_id = rows[row]["id"] if rows else None
        self._set_virtual_height(len(rows) + 1)
        self.refreshes += 1
        if self.follow:
            self._scroll_cursor_into_view()
        else:
            self.scroll_to(y=max(0, old_top + row - old_row), animate=False, immediate=True)
            self._scroll_cursor_into_view()
        self.refresh()

    def _set_virtual_height(self, height: int) -> None:
        size = Size(self.size.width, height)
        if size == self.virtual_size:
            return
        # Assigning virtual_size lays out the whole screen (tens of ms); while the table fills up that
        # would happen at every refresh. Only the scrollbar depends on it, so update just that.
        self.set_reactive(RequestsTable.virtual_size, size)
        self._scroll_update(size)

    def selected_request_id(self) -> str | None:
        return self.selected_id if self.rows else None

    def row_texts(self, index: int) -> list[str]:
        """The visible cell texts of a row (tests and accessibility)."""
        return [self._cell(self.rows[index], key)[0] for key, *_ in self._layout(self.size.width)]

    # --- cursor -----------------------------------------------------------------------------------

    def set_follow(self, follow: bool) -> None:
        if follow != self.follow:
            self.follow = follow
            self.post_message(self.FollowChanged(follow))
        if follow and self.rows:
            self.move_cursor(0, user=False)

    def move_cursor(self, row: int, *, user: bool = True) -> None:
        if not self.rows:
            self.cursor_row = 0
            return
        self.cursor_row = max(0, min(len(self.rows) - 1, row))
        self.selected_id = self.rows[self.cursor_row]["id"]
        if user:
            # Following means "the newest call"; any other row, chosen by the user, holds the view.
            newest_on_top = self.followable and self.sort.is_default and self.cursor_row == 0
            if self.follow != newest_on_top:
                self.follow = newest_on_top
                self.post_message(self.FollowChanged(self.follow))
        self._scroll_cursor_into_view()
        self.refresh()

    def _scroll_cursor_into_view(self) -> None:
        if self.rows and self.size.height > 1:
            # Line 0 is the fixed header, so row i lives at virtual line i + 1.
            self.scroll_to_region(Region(0, self.cursor_row, 1, 2), animate=False, force=True, immediate=True)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_page(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        if where == 0 and self.sort.is_default and self.followable:
            self.set_follow(True)
            return
        self.move_cursor(len(self.rows) - 1 if where < 0 else 0)

    def action_open(self) -> None:
        rid = self.selected_request_id()
        if rid is not None:
            self.post_message(self.Selected(rid))

    def on_click(self, event: events.Click) -> None:
        at = event.get_content_offset(self)
        if at is None:
            return  # on the border or the scrollbar
        if at.y < 1:
            key = self._column_at(at.x)
            if key in SORT_OF_COLUMN:
                self.post_message(self.SortRequested(SORT_OF_COLUMN[key]))
            return
        row = int(self.scroll_offset.y) + at.y - 1
        if 0 <= row < len(self.rows):
            self.move_cursor(row)
            if event.chain >= 2:
                self.action_open()

    def _column_at(self, x: int) -> str | None:
        pos = 1
        for key, _label, w, _right in self._layout(self.size.width):
            if pos <= x < pos + w + GAP:
                return key
            pos += w + GAP
        return None

    # --- rendering --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    def on_focus(self, _: events.Focus) -> None:
        self._cache.clear()
        self.refresh()  # the cursor bar is drawn only while the table has focus (the marker always)

    def on_blur(self, _: events.Blur) -> None:
        self._cache.clear()
        self.refresh()

    def _restyle(self) -> None:
        self._styles.clear()
        self._cache.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cache.clear()

    def _style(self, parts: tuple[str, ...], cell: str | None = None) -> Style:
        """The row's parts (error row, cursor, header) and then the cell's own colour, cached."""
        style = self._styles.get((parts, cell))
        if style is None:
            style = self.rich_style
            for p in parts:
                style += self.get_component_rich_style(f"requests-table--{p}", partial=True)
            # On the error cursor bar every cell takes the bar's colours (red on red would vanish), and
            # the in-flight blue is the bar's own colour under the ANSI themes.
            if cell and "cursor-error" not in parts and not (cell == "pending" and "cursor" in parts):
                style += self.get_component_rich_style(f"requests-table--{cell}", partial=True)
            self._styles[(parts, cell)] = style
        return style

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.rows) + 1)
        self._cache.clear()
        self._scroll_cursor_into_view()

    def _layout(self, width: int) -> list[tuple[str, str, int, bool]]:
        if self._columns_for == (self.layout_kind, width, self.sort.label):
            return self._columns
        code = _KIND_CODE.get(self.layout_kind, "N")
        cols = [(k, label, 14 if k == "time" and self.time_format == "date" else w, right)
                for k, label, w, right, kinds in COLUMNS if code in kinds]
        fixed = sum(w + GAP for _, _, w, _ in cols if w) + GAP + 1
        model = max(MODEL_MIN, min(MODEL_MAX, width - fixed))
        self._columns = [(k, self._header_label(k, label), w or model, right) for k, label, w, right in cols]
        self._columns_for = (self.layout_kind, width, self.sort.label)
        return self._columns

    def _header_label(self, key: str, label: str) -> str:
        """The label, with ↓/↑ on the column the table is sorted by (none for the default order)."""
        if self.sort.is_default or SORT_OF_COLUMN.get(key) != self.sort.key or key == "out":
            return label
        return label + (" ↓" if self.sort.descending else " ↑")

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return self._strip([(label, None) for _, label, _, _ in self._layout(width)], width, ("header",))
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.rows):
            if not self.rows and y == 2:
                style = self._style((), "hint")
                return Strip([Segment(" " + self.empty_text, style)]).adjust_cell_length(width, self.rich_style)
            return Strip.blank(width, self.rich_style)
        r = self.rows[index]
        failed = is_failed(r)
        parts: tuple[str, ...] = ("error-row",) if failed else ()
        selected = index == self.cursor_row
        if selected and self.has_focus:
            parts += ("cursor-error",) if failed else ("cursor",)
        key = (r["id"], r.get("state"), r.get("status"), parts, selected, width, self.layout_kind, self.time_format)
        strip = self._cache.get(key)
        if strip is None:
            cells = [self._cell(r, k) for k, *_ in self._layout(width)]
            strip = self._strip(cells, width, parts, marker=selected)
            self._cache[key] = strip
            if len(self._cache) > CACHE_ROWS:
                self._cache.popitem(last=False)
        return strip

    def _strip(self, cells: list[tuple[str, str | None]], width: int, parts: tuple[str, ...],
               *, marker: bool = False) -> Strip:
        base = self._style(parts)
        gap = Segment(" " * GAP, base)
        segments = [Segment("▌", self._style(parts, "marker")) if marker else Segment(" ", base)]
        for (text, cell), (_, _, w, right) in zip(cells, self._layout(width), strict=True):
            n = cell_len(text)
            if n > w:
                text = set_cell_size(text, w - 1) + "…"
                n = w
            text = " " * (w - n) + text if right else text + " " * (w - n)
            segments.append(Segment(text, self._style(parts, cell) if cell else base))
            segments.append(gap)
        return Strip(segments).adjust_cell_length(width, base)

    def _cell(self, r: dict[str, Any], key: str) -> tuple[str, str | None]:
        pending = r.get("state") == "pending"
        if key == "time":
            return clock_time(r.get("started_at") or "", self.time_format), "muted"
        if key == "model":
            width = next((w for k, _l, w, _r in self._layout(self.size.width) if k == "model"), MODEL_MAX)
            return clip_middle(safe_line(str(r.get("model") or "")), width), None
        if key in ("id", "provider"):
            return safe_line(str(r.get(key) or "")), None
        if key == "agent":
            return safe_line(str(r.get("agent_id") or "")), "muted"
        if key == "flags":
            return flags_of(r), "accent"
        if key == "status":
            return status_text(r), "error" if is_failed(r) else ("pending" if pending else "ok")
        if key == "latency":
            return duration_ms(r.get("latency_ms")), None
        if key == "ttft":
            return duration_ms(first_token_ms(r)), None
        if key in ("in", "out"):
            return ("" if pending else tokens_short(r.get("input_tokens" if key == "in" else "output_tokens"))), None
        cost = call_cost(r)
        return cost, "warn" if cost == "unpriced" or cost.startswith("~") else None
