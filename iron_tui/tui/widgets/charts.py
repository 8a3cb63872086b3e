"""A bar chart with a scale: value labels on the y axis, the time span on the x axis.

    chart.show(values, bucket_s=10, fmt=units.money)   # oldest first; None = no data in that bucket

The top label is the largest value, the bottom one zero; the last line says how far back the first
bar is and that the last bar is now. Bars use eighth blocks, so a chart three lines high still shows
24 levels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

_EIGHTHS = " ▁▂▃▄▅▆▇█"


def span_label(seconds: float) -> str:
    """How far back the first bar is: `-50s`, `-8m`, `-8m10s`, `-2h`."""
    s = round(seconds)
    if s < 60:
        return f"-{s}s"
    if s < 3600:
        m, rest = divmod(s, 60)
        return f"-{m}m{rest:02d}s" if rest else f"-{m}m"
    h, rest = divmod(s, 3600)
    return f"-{h}h{rest // 60:02d}m" if rest >= 60 else f"-{h}h"


class BarChart(Widget):
    """Height = bar rows + one axis line (set the height in CSS)."""

    DEFAULT_CSS = """
    BarChart { height: 4; }
    BarChart > .bar-chart--bar { color: $accent; }
    BarChart > .bar-chart--axis { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"bar-chart--bar", "bar-chart--axis"}  # noqa: RUF012 (Textual's own declaration style)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.values: list[float | None] = []
        self.bucket_s = 10.0
        self.fmt: Callable[[float], str] = lambda v: f"{v:g}"
        self.caption = ""

    def show(self, values: Sequence[float | None], *, bucket_s: float, fmt: Callable[[float], str],
             caption: str = "") -> None:
        new = (list(values), bucket_s, caption)
        if new == (self.values, self.bucket_s, self.caption):
            return
        self.values, self.bucket_s, self.caption = new
        self.fmt = fmt
        self.refresh()

    @property
    def peak(self) -> float:
        return max((v for v in self.values if v is not None), default=0.0)

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        rows = max(1, height - 1)
        bar_style = self.get_component_rich_style("bar-chart--bar")
        axis_style = self.get_component_rich_style("bar-chart--axis")
        peak = self.peak
        top = self.fmt(peak) if peak > 0 else self.fmt(0)
        label_w = max(len(top), 1)
        plot_w = max(1, width - label_w - 1)
        values = self.values[-plot_w:]
        if y == rows:  # the x axis
            left = span_label(len(values) * self.bucket_s)
            right = "now"
            middle = self.caption.center(max(0, plot_w - len(left) - len(right)))
            return self._line([Segment(" " * (label_w + 1), axis_style),
                               Segment(left + middle + right, axis_style)], width)
        label = top if y == 0 else ("0".rjust(label_w) if y == rows - 1 else "")
        cells = []
        level_top = (rows - y) * 8  # eighths at the top of this row, counted from the bottom
        for v in values:
            filled = 0 if not v or peak <= 0 else max(1, math.ceil(v / peak * rows * 8))
            in_row = min(8, max(0, filled - (level_top - 8)))
            cells.append(_EIGHTHS[in_row])
        pad = " " * (plot_w - len(values))
        return self._line([Segment(label.rjust(label_w) + "│", axis_style), Segment(pad + "".join(cells), bar_style)],
                          width)

    def _line(self, segments: list[Segment], width: int) -> Strip:
        return Strip(segments).adjust_cell_length(width, self.rich_style or Style())
