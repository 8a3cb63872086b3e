"""How numbers look to people: money, durations, token counts and counts, one form on every surface.

The dashboard, the web page (which mirrors these rules in JavaScript; a browser test holds the two
to the same strings), the detail views and the log lines all format through here, so one amount
reads the same everywhere:

- money: always six decimals (the engine counts whole microdollars, so this is exact) and thousands
  separators: `$0.001530`, `$0.020000`, `$1,234.500000`; right-aligned columns line up on the point.
- durations: `420 ms` below a second, `2.30 s` below a minute, `3m 05s` beyond; countdowns in whole
  seconds (`24 s`, `3m 05s`).
- tokens: exact with separators (`15,000`) or short for narrow columns (`15.0k`, `1.2M`).
- counts: `1 request`, `2 requests`, `12,345 requests` (no cap).
"""

from __future__ import annotations

import math

MICROS_PER_USD = 1_000_000


def money(micros: int | None, *, none: str = "–") -> str:
    """`$0.001530` from 1530 µ$; `none` when unknown."""
    if micros is None:
        return none
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(int(micros)), MICROS_PER_USD)
    return f"{sign}${whole:,}.{frac:06d}"


def money_usd(usd: float | None, *, none: str = "–") -> str:
    """`money` for a USD float from the feed (rounded to the microdollar it came from)."""
    return none if usd is None else money(round(usd * MICROS_PER_USD))


def call_cost(summary: dict[str, object]) -> str:
    """A call's cost as every surface shows it: `$0.001530`, `~$0.000900` when estimated, `unpriced`,
    `` while unknown (in flight)."""
    if not summary.get("priced", True):
        return "unpriced"
    cost = summary.get("cost_usd")
    if not isinstance(cost, int | float):
        return ""
    text = money_usd(float(cost))
    return "~" + text if summary.get("cost_estimated") else text


def duration_ms(ms: float | None, *, none: str = "") -> str:
    """`420 ms`, `2.30 s`, `3m 05s`."""
    if ms is None:
        return none
    if ms < 999.5:
        return f"{ms:.0f} ms"
    if ms < 59_995:
        return f"{ms / 1000:.2f} s"
    total = round(ms / 1000)
    return f"{total // 60}m {total % 60:02d}s"


def wait_s(seconds: float) -> str:
    """A countdown in whole seconds, rounded up (`24 s`, `3m 05s`): "retry in 24 s"."""
    total = max(0, math.ceil(seconds - 1e-9))
    return f"{total} s" if total < 60 else f"{total // 60}m {total % 60:02d}s"


def tokens(n: int | None, *, none: str = "") -> str:
    """`15,000`."""
    return none if n is None else f"{n:,}"


def tokens_short(n: int | None, *, none: str = "") -> str:
    """`950`, `9,999`, `15.0k`, `1.2M`: at most six characters."""
    if n is None:
        return none
    if n >= 999_950:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.1f}k"
    return f"{n:,}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`1 request`, `2 requests`, `1,234 requests`."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def percent(part: float, whole: float) -> str:
    """`42%` (whole numbers; `<1%` for a small non-zero share)."""
    if whole <= 0:
        return "–"
    pct = 100.0 * part / whole
    if 0 < pct < 0.5:
        return "<1%"
    return f"{pct:.0f}%"


def rate_per_s(n: float) -> str:
    """`0.4/s`, `12/s`, `1,250/s`."""
    return f"{n:.1f}/s" if n < 10 else f"{n:,.0f}/s"
