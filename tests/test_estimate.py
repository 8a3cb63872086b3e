"""Input-token bound (an upper bound without a tokenizer), output limits and the cut-stream estimate."""

from __future__ import annotations

import base64
import json
import random
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iron_tui.core import estimate
from iron_tui.core.estimate import (
    estimate_output_tokens_from_text,
    input_token_bound,
    max_output_tokens,
)

# The most tokens an image can cost, per the providers' published formulas (the test's own table).
DOC_IMAGE_MAX = {"claude": 1_600, "gpt-4o-mini": 36_835, "gpt-4o": 1_105, "gpt-4.1-nano": 3_779}


def image_max(model: str) -> int:
    for prefix in ("claude", "gpt-4o-mini", "gpt-4.1-nano", "gpt-4o"):
        if model.startswith(prefix):
            return DOC_IMAGE_MAX[prefix]
    raise AssertionError(model)


# --- simulated worst case ---------------------------------------------------------------------------

IMAGE_PART_TYPES = {"image_url", "image", "input_image"}


def strip_images(obj: Any) -> tuple[Any, int]:
    """The body with every image part replaced by an empty object, and the number of images."""
    if isinstance(obj, dict):
        if obj.get("type") in IMAGE_PART_TYPES:
            return {}, 1
        out: dict[str, Any] = {}
        n = 0
        for k, v in obj.items():
            out[k], m = strip_images(v)
            n += m
        return out, n
    if isinstance(obj, list):
        items = [strip_images(v) for v in obj]
        return [i for i, _ in items], sum(m for _, m in items)
    return obj, 0


def simulated_worst_tokens(body: dict[str, Any], api: str) -> int:
    """What a byte-level BPE tokenizer could bill at most: one token per byte of the body's JSON text
    (no tokenizer produces more tokens than bytes), the per-message and priming tokens OpenAI documents
    (3-4 per message, 3 to prime the reply), the tool-use system prompt Anthropic documents (346) or
    OpenAI's function header, and each image at its published maximum."""
    stripped, images = strip_images(body)
    n = len(json.dumps(stripped, ensure_ascii=False).encode()) + 3
    for key in ("messages", "input"):
        if isinstance(body.get(key), list):
            n += 4 * len(body[key])
    model = str(body.get("model", ""))
    if body.get("tools"):
        # Anthropic documents 346 tokens of tool-use system prompt; OpenAI's function header is small.
        n += 346 if api == "anthropic.messages" or model.startswith("claude") else 12 + 20 * len(body["tools"])
    return n + (images * image_max(model) if images else 0)


# --- generators -------------------------------------------------------------------------------------

WORDS = ("the be to of and a in that have it for not on with he as you do at this but his by from they we "
         "say her she or an will my one all would there their what so up out if about who get which go me "
         "when make can like time no just him know take people into year your good some could them see other "
         "than then now look only come its over think also back after use two how our work first well way "
         "even new want because any these give day most us budget request model token price agent stream "
         "function weather London Paris temperature report summary analysis database error retry").split()

text = st.one_of(
    # Multi-byte, control, quote and surrogate-free astral characters; a fixed alphabet keeps generation fast.
    st.text(alphabet='abcXYZ 019.,:;{}[]"\\\n\t\x00\x1féüß€日本語🎉🚀\u2028\u200b', max_size=120),
    st.lists(st.sampled_from(WORDS), max_size=80).map(" ".join),
    st.sampled_from(["", "日本語のテキスト", "emoji 🎉🚀 and accents éàü", 'quotes " and \\ backslashes', "a\nb\tc"]),
)
small_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + bytes(3000)).decode()


@st.composite
def openai_chat(draw: st.DrawFn) -> dict[str, Any]:
    model = draw(st.sampled_from(["gpt-4o", "gpt-4o-mini", "gpt-4.1-nano", "claude-sonnet-4-5"]))
    messages: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["system", "user", "user_parts", "assistant_tools", "tool"]))
        if kind == "user_parts":
            parts: list[dict[str, Any]] = [{"type": "text", "text": draw(text)}]
            if draw(st.booleans()):
                url = draw(st.sampled_from([PNG, "https://example.com/cat.png"]))
                parts.append({"type": "image_url", "image_url": {"url": url, "detail": "high"}})
            messages.append({"role": "user", "content": parts})
        elif kind == "assistant_tools":
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": json.dumps(draw(small_json))}}]})
        elif kind == "tool":
            messages.append({"role": "tool", "tool_call_id": "call_1", "content": draw(text)})
        else:
            messages.append({"role": kind, "content": draw(text), **({"name": "bob"} if draw(st.booleans()) else {})})
    body: dict[str, Any] = {"model": model, "messages": messages}
    if draw(st.booleans()):
        body["tools"] = [{"type": "function", "function": {"name": "get_weather", "description": draw(text),
                                                           "parameters": {"type": "object",
                                                                          "properties": draw(small_json)}}}]
    return body


@st.composite
def anthropic_messages(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 6))):
        role = "user" if i % 2 == 0 else "assistant"
        if draw(st.booleans()):
            messages.append({"role": role, "content": draw(text)})
            continue
        blocks: list[dict[str, Any]] = [{"type": "text", "text": draw(text)}]
        if role == "assistant":
            blocks.append({"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": draw(small_json)})
        else:
            blocks.append({"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                {"type": "text", "text": draw(text)}]})
            if draw(st.booleans()):
                blocks.append({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                           "data": PNG.split(",")[1]}})
        messages.append({"role": role, "content": blocks})
    body: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages}
    if draw(st.booleans()):
        body["system"] = draw(st.one_of(text, st.just([{"type": "text", "text": "You are terse.",
                                                         "cache_control": {"type": "ephemeral"}}])))
    if draw(st.booleans()):
        body["tools"] = [{"name": "lookup", "description": draw(text),
                          "input_schema": {"type": "object", "properties": draw(small_json)}}]
    return body


@st.composite
def openai_other(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    api = draw(st.sampled_from(["openai.completions", "openai.embeddings", "openai.responses"]))
    if api == "openai.completions":
        prompt = draw(st.one_of(text, st.lists(text, max_size=3), st.lists(st.integers(0, 200_000), max_size=50)))
        return {"model": "gpt-3.5-turbo-instruct", "prompt": prompt}, api
    if api == "openai.embeddings":
        inp = draw(st.one_of(text, st.lists(text, max_size=5),
                             st.lists(st.lists(st.integers(0, 100_000), max_size=20), max_size=3)))
        return {"model": "text-embedding-3-small", "input": inp}, api
    items = draw(st.one_of(text, st.lists(st.fixed_dictionaries({
        "role": st.sampled_from(["user", "assistant", "developer"]),
        "content": st.one_of(text, st.lists(st.fixed_dictionaries(
            {"type": st.just("input_text"), "text": text}), max_size=2)),
    }), max_size=4)))
    body = {"model": "gpt-4o", "instructions": draw(text), "input": items}
    return body, api


@settings(max_examples=50, deadline=None)
@given(body=openai_chat())
def test_bound_covers_worst_case_openai_chat(body: dict[str, Any]) -> None:
    assert input_token_bound(body, "openai.chat") >= simulated_worst_tokens(body, "openai.chat")


@settings(max_examples=50, deadline=None)
@given(body=anthropic_messages())
def test_bound_covers_worst_case_anthropic(body: dict[str, Any]) -> None:
    assert input_token_bound(body, "anthropic.messages") >= simulated_worst_tokens(body, "anthropic.messages")


@settings(max_examples=50, deadline=None)
@given(case=openai_other())
def test_bound_covers_worst_case_other_openai_apis(case: tuple[dict[str, Any], str]) -> None:
    body, api = case
    assert input_token_bound(body, api) >= simulated_worst_tokens(body, api)


# --- images, files, server state --------------------------------------------------------------------


def test_images_count_a_fixed_bound_not_their_base64_size() -> None:
    big = "data:image/jpeg;base64," + "A" * 2_000_000
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": big}}]}]}
    bound = input_token_bound(body, "openai.chat")
    assert estimate.OPENAI_IMAGE_TOKENS < bound < estimate.OPENAI_IMAGE_TOKENS + 200
    body["model"] = "gpt-4o-mini-2024-07-18"  # bills images at ~33× the tokens (same price as gpt-4o)
    assert input_token_bound(body, "openai.chat") >= 36_835
    body["model"] = "claude-3-5-haiku-latest"  # translated to Anthropic: Anthropic's image bound
    assert estimate.ANTHROPIC_IMAGE_TOKENS < input_token_bound(body, "openai.chat") < 36_835


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_media_by_url_counts_its_allowance_whatever_the_json_looks_like(separators: tuple[str, str]) -> None:
    # With the client's bytes (the proxy's fast path), an image by URL — a few bytes for thousands of
    # tokens — must be found however the JSON is spaced or escaped; a word in the text must not matter.
    import json as _json

    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "read file_path and the image file document"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}
    raw = _json.dumps(body, separators=separators).encode()
    escaped = raw.replace(b'"image_url",', b'"\\u0069mage_url",', 1)  # the type, escaped: same JSON
    assert escaped != raw and _json.loads(escaped) == body
    for sent in (raw, escaped):
        assert input_token_bound(body, "openai.chat", sent) >= estimate.OPENAI_IMAGE_TOKENS
    text_only = {"model": "gpt-4o", "messages": [{"role": "user", "content": "open file_path, an image file"}]}
    raw = _json.dumps(text_only).encode()
    assert input_token_bound(text_only, "openai.chat", raw) < estimate.OPENAI_IMAGE_TOKENS


def test_unbounded_content_counts_a_large_allowance() -> None:
    plain = {"model": "gpt-4o", "input": "hi"}
    chained = {**plain, "previous_response_id": "resp_123"}
    assert input_token_bound(chained, "openai.responses") - input_token_bound(plain, "openai.responses") >= (
        estimate.UNKNOWN_CONTENT_TOKENS)
    doc = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]}]}
    assert input_token_bound(doc, "anthropic.messages") >= estimate.UNKNOWN_CONTENT_TOKENS
    text_doc = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x" * 5000}}]}]}
    assert 5000 < input_token_bound(text_doc, "anthropic.messages") < 6000


def test_server_tools_add_an_allowance() -> None:
    base = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    custom = {**base, "tools": [{"name": "f", "input_schema": {"type": "object"}}]}
    server = {**base, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    assert input_token_bound(custom, "anthropic.messages") - input_token_bound(base, "anthropic.messages") >= 346
    assert input_token_bound(server, "anthropic.messages") >= estimate.HOSTED_TOOL_TOKENS


def test_junk_bodies_do_not_crash() -> None:
    bodies: list[dict[str, Any]] = [{}, {"messages": None}, {"messages": "x"}, {"tools": "x"},
                                     {"input": [None, 1, {}]}]
    for body in bodies:
        assert input_token_bound(body, "openai.chat") >= estimate.PER_REQUEST_TOKENS
    assert input_token_bound([], "openai.chat") == estimate.PER_REQUEST_TOKENS  # type: ignore[arg-type]


# --- how conservative (the numbers quoted in estimate.py's docstring) -------------------------------

# GPT-style pre-tokenisation: BPE never merges across these pieces, and a common English word with its
# leading space is one token, so the piece count is close to (and never above) the real token count.
PRETOKEN = re.compile(r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d{1,3}| ?[^\s\w]+|\s+(?!\S)|\s+")


def realistic_tokens(body: dict[str, Any]) -> int:
    texts: list[str] = []
    for m in body.get("messages", []):
        texts.append(m["content"])
    if "system" in body:
        texts.append(body["system"])
    if "tools" in body:
        texts.append(json.dumps(body["tools"]))
    return sum(len(PRETOKEN.findall(t)) for t in texts) + 4 * len(body["messages"]) + 3


def english(rng: random.Random, words: int) -> str:
    out: list[str] = []
    for i in range(words):
        w = rng.choice(WORDS)
        out.append(w.capitalize() if i == 0 or out[-1].endswith(".") else w)
        if rng.random() < 0.08:
            out[-1] += rng.choice([".", ",", "?"])
    return " ".join(out) + "."


def ratios(make_body: Any, n: int = 60) -> tuple[float, float]:
    rng = random.Random(42)
    values = []
    for _ in range(n):
        body = make_body(rng)
        values.append(input_token_bound(body, "openai.chat") / realistic_tokens(body))
    values.sort()
    return values[len(values) // 2], values[-1]


def short_chat(rng: random.Random) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                            {"role": "user", "content": english(rng, rng.randint(8, 20))}]}


def typical_chat(rng: random.Random) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [
        {"role": "user" if i % 2 == 0 else "assistant", "content": english(rng, rng.randint(20, 120))}
        for i in range(rng.randint(5, 20))]}


def long_document(rng: random.Random) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": english(rng, 3000)}]}


def chat_with_tools(rng: random.Random) -> dict[str, Any]:
    body = typical_chat(rng)
    body["tools"] = [{"type": "function", "function": {
        "name": f"tool_{k}", "description": english(rng, 15),
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": english(rng, 6)},
                                                        "units": {"type": "string", "enum": ["c", "f"]}},
                       "required": ["city"]}}} for k in range(4)]
    return body


@pytest.mark.parametrize(
    ("make_body", "lo", "hi"),
    [(short_chat, 3.0, 12.0), (typical_chat, 3.5, 7.0), (long_document, 3.5, 6.0), (chat_with_tools, 3.5, 8.0)],
)
def test_report_conservativeness(make_body: Any, lo: float, hi: float) -> None:
    median, worst = ratios(make_body)
    print(f"{make_body.__name__}: bound / realistic tokens median {median:.2f}, max {worst:.2f}")
    assert lo <= median <= hi


# --- output limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "api", "expected"),
    [
        ({"max_completion_tokens": 300, "max_tokens": 100}, "openai.chat", 300),
        ({"max_tokens": 100}, "openai.chat", 100),
        ({"max_completion_tokens": 100, "max_tokens": 300}, "openai.chat", 300),
        ({"max_completion_tokens": 77, "max_tokens": "x"}, "openai.chat", 77),
        ({"max_completion_tokens": 10, "n": 0}, "openai.chat", 10),
        ({"n": 2}, "openai.chat", 8192),
        ({"max_tokens": 5, "n": 2.0}, "openai.chat", 10),
        ({"max_tokens": 100, "n": 3}, "openai.chat", 300),
        ({}, "openai.chat", 4096),
        ({"max_tokens": None}, "openai.chat", 4096),
        ({"max_tokens": "lots"}, "openai.chat", 4096),
        ({"max_tokens": -5}, "openai.chat", 4096),
        ({"max_tokens": True}, "openai.chat", 4096),
        ({"max_tokens": 64.0}, "openai.chat", 64),
        ({"max_tokens": 0}, "openai.chat", 0),
        ({"max_tokens": 50, "n": 2, "best_of": 5}, "openai.completions", 250),
        ({}, "openai.completions", 4096),
        ({"max_output_tokens": 900, "max_tokens": 5}, "openai.responses", 900),
        ({"max_tokens": 2048}, "anthropic.messages", 2048),
        ({"max_tokens": 2048, "input": "x"}, "openai.embeddings", 0),
    ],
)
def test_max_output_tokens(body: dict[str, Any], api: str, expected: int) -> None:
    assert max_output_tokens(body, api, 4096) == expected


@pytest.mark.parametrize(("chars", "tokens"), [(0, 0), (-3, 0), (1, 1), (2, 1), (3, 2), (4001, 2001)])
def test_cut_stream_estimate(chars: int, tokens: int) -> None:
    assert estimate_output_tokens_from_text(chars) == tokens


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=200), min_size=1, max_size=8), st.booleans())
def test_raw_fast_path_is_still_an_upper_bound(texts: list[str], ascii_only: bool) -> None:
    import json as _json

    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": t} for t in texts]}
    raw = _json.dumps(body, separators=(",", ":"), ensure_ascii=ascii_only).encode()
    fast = input_token_bound(body, "openai.chat", raw)
    # One token covers at least one byte of a string's UTF-8 text.
    assert fast >= sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    assert fast <= input_token_bound(body, "openai.chat") + len(raw)


def test_a_schema_property_named_type_is_data_not_a_part_type() -> None:
    # Codex and LangChain structured output: {"properties": {"type": {"type": "string"}}} made the walk
    # look up a dict in a set (TypeError: unhashable type: 'dict').
    schema = {"type": "object", "properties": {"type": {"type": "string"}, "image": {"type": "string"}}}
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "describe the image"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
            "tools": [{"type": {"weird": True}, "function": {"name": "f"}}]}
    raw = json.dumps(body).encode()
    assert input_token_bound(body, "openai.chat", raw) >= len(raw)
    assert input_token_bound(body, "openai.responses") >= len(raw)


def test_deep_nesting_is_a_clear_caller_error() -> None:
    from iron_tui.core.estimate import MAX_DEPTH, BodyTooDeep
    from iron_tui.core.translate.errors import TranslationError

    deep: object = "image"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(BodyTooDeep) as info:
        input_token_bound({"model": "gpt-4o", "messages": deep}, "openai.chat")
    assert isinstance(info.value, TranslationError) and "nested too deeply" in info.value.message
    shallow: object = "image"
    for _ in range(MAX_DEPTH - 10):
        shallow = {"a": shallow}
    assert input_token_bound({"model": "gpt-4o", "x": shallow}, "openai.chat") > MAX_DEPTH
