"""The translators' JSON reader: exact integers of any size, the same refusals as orjson."""

from __future__ import annotations

import pytest

from iron_tui.core.bounded_json import loads_exact, parse_object


@pytest.mark.parametrize("text, value", [
    ('{"a": -9223372036854775809}', {"a": -9223372036854775809}),  # one past int64
    ('{"a": 18446744073709551616}', {"a": 18446744073709551616}),  # past uint64 too
    ('[1.5, "12345678901234567890 in a string", 9223372036854775807]',
     [1.5, "12345678901234567890 in a string", 9223372036854775807]),
    ('{"a": 1, "b": [true, null]}', {"a": 1, "b": [True, None]}),
])
def test_integers_stay_exact(text: str, value: object) -> None:
    got = loads_exact(text)
    assert got == value
    assert [type(v) for v in (got.values() if isinstance(got, dict) else got)] == \
        [type(v) for v in (value.values() if isinstance(value, dict) else value)]  # type: ignore[union-attr]


@pytest.mark.parametrize("text", ["NaN", '{"a": NaN, "n": 12345678901234567890}', '{"a": Infinity}',
                                  '{"a": -Infinity, "n": 12345678901234567890}', "{", "",
                                  "[" * 100_000 + "1234567890123456789" + "]" * 100_000])
def test_what_is_not_json_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        loads_exact(text)


def test_parse_object_reads_big_integers_and_refuses_the_rest() -> None:
    assert parse_object('{"x": 123456789012345678901234567890}') == {"x": 123456789012345678901234567890}
    assert parse_object('{"x": NaN, "y": 12345678901234567890}') is None
    assert parse_object("[1]") is None
