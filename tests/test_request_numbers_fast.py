"""Bad numbers are the caller's error: every count is checked, the error names the field."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iron_tui.core.request_numbers import validate_numbers
from iron_tui.core.translate.errors import TranslationError

BAD_COUNTS = [-1, 1.5, math.nan, math.inf, -math.inf, "100", True, False, [3], {"n": 1}, 10**400]


def _err(api: str, body: dict, max_output: int | None = None) -> TranslationError:
    with pytest.raises(TranslationError) as info:
        validate_numbers(api, body, max_output=max_output)
    return info.value


@pytest.mark.parametrize("value", BAD_COUNTS, ids=[str(i) for i in range(len(BAD_COUNTS))])
@pytest.mark.parametrize(("api", "field"), [
    ("openai.chat", "max_tokens"), ("openai.chat", "max_completion_tokens"), ("openai.chat", "n"),
    ("openai.chat", "top_logprobs"), ("openai.responses", "max_output_tokens"),
    ("openai.completions", "max_tokens"), ("openai.completions", "best_of"), ("openai.completions", "n"),
    ("anthropic.messages", "max_tokens"), ("anthropic.messages", "top_k"),
])
def test_bad_counts_are_refused_naming_the_field(api: str, field: str, value: object) -> None:
    if value == -1 and field == "top_logprobs":
        value = -5
    body = {"model": "m", field: value}
    if api == "anthropic.messages" and field != "max_tokens":
        body["max_tokens"] = 100
    err = _err(api, body)
    assert err.param == field
    assert field in err.message
    json.dumps({"error": {"message": err.message}})  # the message itself is always serialisable
    assert len(err.message) < 300  # a 400-digit number is not echoed back


def test_thinking_budget_is_checked() -> None:
    base = {"model": "claude-sonnet-4-5", "max_tokens": 4000}
    for bad in (-1, 1.5, "2000", math.nan, 10**30):
        err = _err("anthropic.messages", {**base, "thinking": {"type": "enabled", "budget_tokens": bad}})
        assert err.param in ("thinking.budget_tokens", "max_tokens")
    err = _err("anthropic.messages", {**base, "thinking": {"type": "enabled", "budget_tokens": 500}})
    assert err.param == "thinking.budget_tokens"  # below Anthropic's 1,024 minimum
    err = _err("anthropic.messages", {**base, "thinking": {"type": "enabled", "budget_tokens": 4000}})
    assert err.param == "max_tokens"  # max_tokens must exceed the thinking budget
    validate_numbers("anthropic.messages", {**base, "thinking": {"type": "enabled", "budget_tokens": 2000}})


def test_caps_above_the_model_maximum_are_refused() -> None:
    err = _err("openai.chat", {"model": "gpt-4o", "max_tokens": 100_000}, max_output=16_384)
    assert err.param == "max_tokens" and "16384" in err.message and err.code == "integer_above_max_value"
    validate_numbers("openai.chat", {"model": "gpt-4o", "max_tokens": 16_384}, max_output=16_384)


def test_anthropic_requires_max_tokens() -> None:
    err = _err("anthropic.messages", {"model": "claude-sonnet-4-5"})
    assert err.param == "max_tokens" and err.code == "missing_required_parameter"


def test_sampling_numbers_must_be_finite_and_in_range() -> None:
    for body in ({"temperature": math.nan}, {"temperature": 3}, {"top_p": -0.1}, {"presence_penalty": math.inf},
                 {"logit_bias": {"50256": 1e300}}, {"temperature": "hot"}):
        err = _err("openai.chat", {"model": "gpt-4o", **body})
        assert err.param is not None and err.param.split(".")[0] in body


def test_good_bodies_pass_and_integral_floats_are_whole_numbers() -> None:
    validate_numbers("openai.chat", {"model": "gpt-4o", "max_tokens": 100.0, "n": 2, "temperature": 0.7,
                                     "top_logprobs": 5, "seed": -3, "logit_bias": {"1": -100}})
    validate_numbers("openai.responses", {"model": "gpt-4o", "max_output_tokens": 16, "temperature": None})
    validate_numbers("openai.completions", {"model": "x", "max_tokens": 0, "n": 2, "best_of": 3})
    validate_numbers("openai.embeddings", {"model": "x", "dimensions": 256})
    validate_numbers("unknown.api", {"max_tokens": "anything"})


def test_best_of_must_cover_n() -> None:
    assert _err("openai.completions", {"model": "x", "n": 3, "best_of": 2}).param == "best_of"


@given(st.dictionaries(st.sampled_from(["max_tokens", "max_completion_tokens", "n", "top_logprobs", "temperature",
                                        "top_p", "seed", "max_output_tokens", "best_of", "top_k", "thinking"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                                 st.lists(st.integers(), max_size=2),
                                 st.fixed_dictionaries({"type": st.just("enabled"),
                                                        "budget_tokens": st.integers()}))))
def test_any_body_either_passes_or_raises_translation_error(body: dict) -> None:
    for api in ("openai.chat", "openai.responses", "openai.completions", "anthropic.messages"):
        try:
            validate_numbers(api, body, max_output=64_000)
        except TranslationError as exc:
            assert exc.param and exc.message


def test_absurd_amounts_never_break_a_feed_message() -> None:
    from iron_tui.core.budget import BudgetLedger
    from iron_tui.core.clock import FixedClock
    from iron_tui.core.events import RequestRecord, to_wire
    from iron_tui.core.feed_messages import dumps

    published: list = []
    ledger = BudgetLedger(limit_micros=None, publish=published.append, clock=FixedClock(1_700_000_000.0))
    ledger.reserve("r1", 10**400, model="gpt-4o", provider="openai")
    rec = RequestRecord(id="r1", started_at=1_700_000_000.0, method="POST", path="/v1/chat/completions",
                        api="openai.chat", model="gpt-4o", provider="openai", cost_micros=10**400)
    for event in published:
        for message in to_wire(event):
            json.loads(dumps(message))
    assert json.loads(dumps({"request": rec.summary()}))["request"]["cost_usd"] > 1e299


def test_a_routed_call_gets_its_cap_fitted_to_the_serving_model() -> None:
    from iron_tui.core.request_numbers import fit_caps_to_model

    body = {"max_tokens": 128_000, "thinking": {"type": "enabled", "budget_tokens": 60_000}}
    out, warnings = fit_caps_to_model("anthropic.messages", body, 32_000)
    assert out == {"max_tokens": 32_000, "thinking": {"type": "enabled", "budget_tokens": 31_999}}
    assert body["max_tokens"] == 128_000 and len(warnings) == 1  # the client's body is not changed
    chat = {"max_completion_tokens": 20_000.0, "max_tokens": 100}
    assert fit_caps_to_model("openai.chat", chat, 16_384)[0] == {"max_completion_tokens": 16_384, "max_tokens": 100}
    for fits, limit in (({"max_output_tokens": 500}, 1000), ({"max_output_tokens": 5000}, None),
                        ({"max_output_tokens": "lots"}, 1000), ({"max_output_tokens": True}, 0)):
        assert fit_caps_to_model("openai.responses", fits, limit) == (fits, [])  # bad values stay for the check


# Every field some validator checks, per API (validate_numbers skips bodies that set none of them).
_CHECKED = {
    "openai.chat": ["max_tokens", "max_completion_tokens", "n", "top_logprobs", "seed", "temperature", "top_p",
                    "presence_penalty", "frequency_penalty", "logit_bias"],
    "openai.responses": ["max_output_tokens", "max_tool_calls", "top_logprobs", "temperature", "top_p"],
    "openai.completions": ["max_tokens", "n", "best_of", "logprobs", "seed", "temperature", "top_p",
                           "presence_penalty", "frequency_penalty", "logit_bias"],
    "openai.embeddings": ["dimensions"],
}


@pytest.mark.parametrize(("api", "field"), [(api, f) for api, fields in _CHECKED.items() for f in fields])
def test_a_bad_number_is_caught_alone_and_among_other_fields(api: str, field: str) -> None:
    """The shortcut for bodies without numbers never skips one that has a bad number."""
    bad = {"logit_bias": {"42": "lots"}}.get(field, "lots")
    for body in ({field: bad}, {"model": "m", "messages": [], "stream": True, "tools": [], field: bad}):
        assert _err(api, body).param.startswith(field)
    validate_numbers(api, {"model": "m", "messages": [], "stream": True, "tools": [], "metadata": {"n": "x"}})


def test_the_shortcut_sees_every_field_a_validator_reads() -> None:
    """Fields read with get, `in` or [] all count, so a new check cannot be skipped by the shortcut; a
    validator that refuses an empty body (a required field) gets no shortcut at all."""
    from iron_tui.core.request_numbers import _fields_checked

    def check(body: dict, max_output: int | None = None) -> None:
        body.get("a")
        if "b" in body:
            raise AssertionError
        try:
            body["c"]
        except KeyError:
            pass

    assert _fields_checked(check) == {"a", "b", "c"}

    def required(body: dict, max_output: int | None = None) -> None:
        body["max_tokens"]

    assert _fields_checked(required) is None
