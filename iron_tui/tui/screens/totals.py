"""Totals: per model, provider or agent — calls, errors, p50/p95 latency and TTFT, tokens, cost and
share of the budget — with request-rate and latency graphs and the budget forecast. Live: it redraws
every second from the dashboard's running totals."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static

from iron_tui.core.stats import BUCKET_S, GROUPINGS, SAMPLES_PER_GROUP, GroupBy, GroupTotals, forecast
from iron_tui.core.units import count, duration_ms, money, percent, rate_per_s, tokens_short
from iron_tui.tui.safe import safe_line
from iron_tui.tui.timefmt import span
from iron_tui.tui.widgets.charts import BarChart
from iron_tui.tui.widgets.panels import set_content
from iron_tui.tui.widgets.requests import clip_middle

if TYPE_CHECKING:
    from iron_tui.tui.app import IronApp

BUCKETS = 60  # ten minutes
# (label, width, right-aligned)
_COLS: tuple[tuple[str, int, bool], ...] = (
    ("Calls", 7, True), ("Errors", 6, True), ("p50", 7, True), ("p95", 7, True), ("TTFT p50", 8, True),
    ("TTFT p95", 8, True), ("In", 6, True), ("Out", 6, True), ("Cost", 12, True), ("Budget", 6, True),
)
_NARROW_DROP = {"TTFT p50", "TTFT p95", "In", "Out"}


def totals_table(groups: list[GroupTotals], by: GroupBy, limit: int | None, width: int) -> Content:
    cols = [c for c in _COLS if width >= 110 or c[0] not in _NARROW_DROP]
    fixed = sum(w + 2 for _, w, _ in cols)
    key_w = max(12, min(48, width - fixed - 1))
    head = by.capitalize().ljust(key_w) + "".join(("  " + label.rjust(w)) for label, w, _ in cols)
    lines = [Content.from_markup("[b $text-primary]$h[/]", h=head)]
    for g in groups:
        values = {
            "Calls": f"{g.calls:,}", "Errors": f"{g.errors:,}" if g.errors else "–",
            "p50": duration_ms(g.latency_p50, none="–"), "p95": duration_ms(g.latency_p95, none="–"),
            "TTFT p50": duration_ms(g.ttft_p50, none="–"), "TTFT p95": duration_ms(g.ttft_p95, none="–"),
            "In": tokens_short(g.input_tokens), "Out": tokens_short(g.output_tokens),
            "Cost": "unpriced" if g.unpriced == g.calls else money(g.cost_micros),
            "Budget": "–" if limit is None else percent(g.cost_micros, limit),
        }
        name = clip_middle(safe_line(g.key), key_w)
        row = name + " " * (key_w - cell_len(name)) + "".join("  " + values[label].rjust(w) for label, w, _ in cols)
        style = "$text-error" if g.errors and g.errors == g.calls else "$foreground"
        lines.append(Content.from_markup(f"[{style}]$r[/]", r=row))
    if not groups:
        lines.append(Content.from_markup("[$foreground-muted]no finished calls yet[/]"))
    return Content("\n").join(lines)


class TotalsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape", "close", "Back"),
        Binding("g", "group", "Group by"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.by: GroupBy = "model"

    @property
    def iron(self) -> IronApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="totals-title")
        with VerticalScroll(id="totals-body"):
            yield Static(id="totals-table")
            with Horizontal(id="totals-graphs"):
                with Vertical(classes="graph") as rate:
                    rate.border_title = "Requests per second"
                    yield BarChart(id="rate-chart")
                with Vertical(classes="graph") as lat:
                    lat.border_title = "Latency p50 (successful calls)"
                    yield BarChart(id="latency-chart")
            yield Static(id="forecast")
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(1.0, self.redraw)
        self.query_one("#totals-body").focus()

    def redraw(self) -> None:
        dash = self.iron.dashboard
        acc = dash.totals
        spent, _reserved, limit, _period = dash.spend  # as the Spend panel shows it
        now = self.iron.clock.now()
        groups = acc.groups(self.by)
        by_label = " · ".join(f"[b]{g}[/]" if g == self.by else g for g in GROUPINGS)
        sampled = "" if all(g.sampled < SAMPLES_PER_GROUP for g in groups) else \
            f" · percentiles over each group's latest {SAMPLES_PER_GROUP:,} calls"
        set_content(self.query_one("#totals-title", Static), Content.from_markup(
            f"Totals by {by_label}  [$foreground-muted]g switches · $n · $e$s[/]",
            n=count(acc.calls, "call"), e=count(acc.errors, "error"), s=sampled))
        width = self.size.width - 2
        set_content(self.query_one("#totals-table", Static), totals_table(groups, self.by, limit, width))
        rates = [c / BUCKET_S for c in acc.rate_series(now, BUCKETS)]
        self.query_one("#rate-chart", BarChart).show(rates, bucket_s=BUCKET_S, fmt=rate_per_s,
                                                     caption=f"per {BUCKET_S:g} s")
        lat = acc.latency_series(now, BUCKETS)
        self.query_one("#latency-chart", BarChart).show(lat, bucket_s=BUCKET_S, fmt=duration_ms,
                                                        caption=f"p50 per {BUCKET_S:g} s")
        set_content(self.query_one("#forecast", Static), self._forecast(spent, limit, now))

    def _forecast(self, spent: int, limit: int | None, now: float) -> Content:
        f = forecast(spent, limit, self.iron.dashboard.totals.spend_points(), now)
        burn = f"{money(round(f.burn_micros_per_min))}/min over the last {span(f.window_s)}"
        if limit is None:
            text = f"spent {money(spent)} · no limit · burn {burn}"
        elif f.exhausted:
            text = f"budget exhausted: {money(spent)} of {money(limit)} spent"
        elif f.seconds_left is None:
            text = f"{money(f.remaining_micros)} of {money(limit)} left · nothing spent recently"
        else:
            text = (f"{money(f.remaining_micros)} of {money(limit)} left · burn {burn} · "
                    f"runs out in about {span(f.seconds_left)} at this rate")
        style = "$text-error" if f.exhausted or (f.seconds_left is not None and f.seconds_left < 600) else "$foreground"
        return Content.from_markup(f"[b]Budget forecast[/]  [{style}]$t[/]", t=text)

    def action_group(self) -> None:
        self.by = GROUPINGS[(GROUPINGS.index(self.by) + 1) % len(GROUPINGS)]
        self.redraw()

    def action_close(self) -> None:
        self.dismiss()
