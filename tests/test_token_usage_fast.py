"""Usage that matches the bill: Anthropic compaction iterations, web searches, 1-hour cache writes."""

from __future__ import annotations

import json
from pathlib import Path

from iron_tui.core.pricing import Pricer
from iron_tui.core.token_usage import TokenUsage

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "anthropic_compaction_usage.json").read_text())


def test_compaction_response_is_billed_for_every_pass() -> None:
    # A recorded claude-opus-4-6 response: the top level says 682 in / 1,320 out, but the compaction
    # pass read 60,385 tokens and wrote 592 more; Anthropic bills the sum of the iterations.
    usage = TokenUsage.from_anthropic(RECORDED["response_usage"])
    assert usage == TokenUsage(input_tokens=60_385 + 682, output_tokens=592 + 1_320)
    pricer = Pricer()
    # claude-opus-4-6: $5 / Mtok in, $25 / Mtok out (base tier; 61,067 input tokens stay below 200K).
    assert pricer.cost("anthropic", "claude-opus-4-6", usage) == 61_067 * 5 + 1_912 * 25
    top_level_only = pricer.cost("anthropic", "claude-opus-4-6", TokenUsage(input_tokens=682, output_tokens=1_320))
    assert top_level_only is not None and top_level_only * 9 < pricer.cost("anthropic", "claude-opus-4-6", usage)


def test_compaction_stream_folds_to_the_iteration_sums() -> None:
    start = TokenUsage.from_anthropic(RECORDED["stream_message_start_usage"])
    assert start.input_tokens == 60_385  # a stream cut here is still charged the compaction pass's input
    final = start.updated_from_anthropic(RECORDED["stream_message_delta_usage"])
    assert final == TokenUsage(input_tokens=60_385 + 612, output_tokens=522 + 2_819)


def test_iterations_carry_cache_tokens_and_a_compaction_only_list_adds_the_top_level() -> None:
    usage = TokenUsage.from_anthropic({
        "input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 5,
        "iterations": [{"type": "compaction", "input_tokens": 1000, "output_tokens": 200,
                        "cache_read_input_tokens": 3, "cache_creation_input_tokens": 4,
                        "cache_creation": {"ephemeral_1h_input_tokens": 4}}],
    })
    assert usage == TokenUsage(input_tokens=1100, output_tokens=250, cache_read_tokens=13, cache_write_tokens=9,
                               cache_write_1h_tokens=4)


def test_malformed_iterations_never_raise() -> None:
    for junk in ([None, "x", 3], [{"type": "message", "input_tokens": "many"}], "iterations", {}):
        usage = TokenUsage.from_anthropic({"input_tokens": 7, "output_tokens": 2, "iterations": junk})
        assert usage.output_tokens in (0, 2)


def test_web_searches_are_priced_per_search() -> None:
    usage = TokenUsage.from_anthropic({"input_tokens": 1000, "output_tokens": 100,
                                       "server_tool_use": {"web_search_requests": 3}})
    assert usage.web_search_requests == 3
    pricer = Pricer()
    tokens_only = pricer.cost("anthropic", "claude-sonnet-4-5", TokenUsage(input_tokens=1000, output_tokens=100))
    assert tokens_only == 1000 * 3 + 100 * 15
    # genai-prices: $10 per 1,000 searches = 10,000 µ$ each.
    assert pricer.cost("anthropic", "claude-sonnet-4-5", usage) == tokens_only + 3 * 10_000
    assert pricer.worst_case("anthropic", "claude-sonnet-4-5", 1000, 100, web_searches=5) == (
        pricer.worst_case("anthropic", "claude-sonnet-4-5", 1000, 100) + 5 * 10_000)


def test_streamed_one_hour_cache_writes_survive_a_later_event_without_them() -> None:
    start = TokenUsage.from_anthropic({"input_tokens": 10, "output_tokens": 1, "cache_creation_input_tokens": 500,
                                       "cache_creation": {"ephemeral_1h_input_tokens": 500}})
    final = start.updated_from_anthropic({"output_tokens": 40})
    assert final.cache_write_1h_tokens == 500 and final.cache_write_tokens == 500 and final.output_tokens == 40
