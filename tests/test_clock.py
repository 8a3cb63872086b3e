"""The cached ISO formatter must agree with datetime for every timestamp."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from iron_tui.core.clock import FixedClock, SequentialIds, iso_utc


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_iso_utc_matches_datetime(ts: float) -> None:
    expected = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert iso_utc(ts) == expected


def test_fixed_clock_and_ids_are_deterministic() -> None:
    c = FixedClock()
    assert iso_utc(c.now()) == "2026-01-01T00:00:00.000Z"
    c.advance(1.5)
    assert iso_utc(c.now()) == "2026-01-01T00:00:01.500Z"
    ids = SequentialIds()
    assert [ids.request_id(), ids.request_id()] == ["req_000001", "req_000002"]
    assert ids.event_id() != ids.event_id()
