"""Times as the dashboard shows them: local wall-clock time of a call, uptime, "ago"."""

from __future__ import annotations

from datetime import datetime


def clock_time(iso: str, form: str = "time") -> str:
    """`HH:MM:SS` (form "time") or `MM-DD HH:MM:SS` (form "date"), in local time, from the feed's
    ISO-8601 UTC timestamp."""
    try:
        local = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return iso
    return local.strftime("%m-%d %H:%M:%S" if form == "date" else "%H:%M:%S")


def uptime(seconds: float) -> str:
    s = max(0, int(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    return f"{s // 3600}h ago"


def span(seconds: float) -> str:
    """A length of time for forecasts: `45 s`, `12 min`, `3 h 20 min`, `2 days`."""
    s = max(0.0, seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 172_800:
        h, m = divmod(round(s / 60), 60)
        return f"{h} h {m:02d} min"
    return f"{s / 86_400:.0f} days"
