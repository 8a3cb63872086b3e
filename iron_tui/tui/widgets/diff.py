"""Two texts side by side, aligned by a line diff: the agent's side on the left, upstream on the right.

Changed lines are tinted on both sides, lines only one side has are tinted on that side and hatched
on the other; long lines wrap within their column, so nothing is cut off.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from iron_tui.core.textdiff import DiffRow, diff_stats
from iron_tui.tui.safe import safe_line

_NO = 5  # line-number column, with its space
_MID = " │ "


def _wrap(text: str, width: int) -> list[str]:
    if width <= 0:
        return [""]
    out: list[str] = []
    line: list[str] = []
    n = 0
    for ch in text:
        w = cell_len(ch)
        if n + w > width:
            out.append("".join(line))
            line, n = [], 0
        line.append(ch)
        n += w
    out.append("".join(line))
    return out


class DiffView(ScrollView, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "diff-view--title", "diff-view--number", "diff-view--replace", "diff-view--delete", "diff-view--insert",
        "diff-view--blank", "diff-view--rule",
    }

    def __init__(self, rows: list[DiffRow], left_title: str, right_title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rows = rows
        self.left_title = left_title
        self.right_title = right_title
        self.stats = diff_stats(rows)
        self._lines: list[tuple[str, str | None, str | None, str, str]] = []  # tag, left, right, numbers
        self._laid_out_at = -1

    def _layout(self, width: int) -> None:
        if width == self._laid_out_at:
            return
        self._laid_out_at = width
        col = max(8, (width - len(_MID)) // 2 - _NO)
        lines: list[tuple[str, str | None, str | None, str, str]] = []
        for r in self.rows:
            left = _wrap(safe_line(r.left), col) if r.left is not None else []
            right = _wrap(safe_line(r.right), col) if r.right is not None else []
            for i in range(max(len(left), len(right), 1)):
                lines.append((
                    r.tag,
                    left[i] if i < len(left) else (None if r.left is None else ""),
                    right[i] if i < len(right) else (None if r.right is None else ""),
                    str(r.left_no) if i == 0 and r.left_no is not None else "",
                    str(r.right_no) if i == 0 and r.right_no is not None else "",
                ))
        self._lines = lines
        self.virtual_size = Size(width, len(lines) + 1)

    def on_resize(self, event: events.Resize) -> None:
        self._layout(event.size.width)

    def on_mount(self) -> None:
        self._layout(self.size.width)

    def _style(self, part: str) -> Style:
        return self.rich_style + self.get_component_rich_style(f"diff-view--{part}", partial=True)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        self._layout(width)
        col = max(8, (width - len(_MID)) // 2 - _NO)
        if y == 0:
            title = self._style("title")
            head = self.left_title[: col + _NO].ljust(col + _NO)
            return Strip([Segment(head, title), Segment(_MID, self._style("rule")),
                          Segment(self.right_title[: col + _NO], title)]).adjust_cell_length(width, title)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        tag, left, right, lno, rno = self._lines[index]
        segs = [*self._side(tag, left, lno, col, "delete"), Segment(_MID, self._style("rule"))]
        segs += self._side(tag, right, rno, col, "insert")
        return Strip(segs).adjust_cell_length(width, self.rich_style)

    def _side(self, tag: str, text: str | None, number: str, col: int, only: str) -> list[Segment]:
        num = Segment(number.rjust(_NO - 1) + " ", self._style("number"))
        if text is None:
            return [num, Segment("╱" * col, self._style("blank"))]
        part = "replace" if tag == "replace" else (only if tag == only else "")
        style = self._style(part) if part else self.rich_style
        return [num, Segment(text + " " * (col - cell_len(text)), style)]
