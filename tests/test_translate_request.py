"""Golden tests: OpenAI chat-completions request → Anthropic Messages request (reference/translation.md)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from iron_tui.core.translate import TranslationError, openai_to_anthropic_request
from iron_tui.core.translate.request import JSON_OBJECT_INSTRUCTION

USER = {"role": "user", "content": "hi"}
EPHEMERAL = {"type": "ephemeral"}


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": t, **extra}


def translate(**fields: Any) -> dict[str, Any]:
    body = {"model": "claude-sonnet-4-5", "messages": [USER], **fields}
    return openai_to_anthropic_request(body).body


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# (id, extra OpenAI fields, expected subset of the Anthropic body; None value = key must be absent)
PARAM_ROWS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("max_completion_tokens wins", {"max_completion_tokens": 100, "max_tokens": 50}, {"max_tokens": 100}),
    ("max_tokens", {"max_tokens": 50}, {"max_tokens": 50}),
    ("max_tokens default", {}, {"max_tokens": 4096}),
    ("temperature clamped high", {"temperature": 1.7}, {"temperature": 1}),
    ("temperature kept", {"temperature": 0.3}, {"temperature": 0.3}),
    ("temperature clamped low", {"temperature": -0.5}, {"temperature": 0}),
    ("top_p", {"top_p": 0.9}, {"top_p": 0.9}),
    ("top_k", {"top_k": 40}, {"top_k": 40}),
    ("temperature wins over top_p", {"temperature": 0.5, "top_p": 0.9}, {"temperature": 0.5, "top_p": None}),
    ("stop string", {"stop": "END"}, {"stop_sequences": ["END"]}),
    ("stop list cleaned", {"stop": ["", "  ", "\n", "A", " B\n"]}, {"stop_sequences": ["A", " B\n"]}),
    ("stop only blanks", {"stop": ["", " "]}, {"stop_sequences": None}),
    ("user", {"user": "u-42"}, {"metadata": {"user_id": "u-42"}}),
    ("safety_identifier", {"safety_identifier": "s-1"}, {"metadata": {"user_id": "s-1"}}),
    ("stream passed", {"stream": True}, {"stream": True}),
    ("stream false omitted", {"stream": False}, {"stream": None}),
    (
        "stream_options not sent",
        {"stream": True, "stream_options": {"include_usage": True}},
        {"stream_options": None},
    ),
    ("seed dropped", {"seed": 7}, {"seed": None}),
    ("presence_penalty dropped", {"presence_penalty": 0.5}, {"presence_penalty": None}),
    ("frequency_penalty dropped", {"frequency_penalty": 0.5}, {"frequency_penalty": None}),
    ("response_format text dropped", {"response_format": {"type": "text"}}, {"response_format": None}),
    ("openai metadata dropped", {"metadata": {"k": "v"}}, {"metadata": None}),
    ("n=1 accepted", {"n": 1}, {"n": None}),
    ("logprobs false accepted", {"logprobs": False}, {"logprobs": None}),
    ("unknown key not sent", {"store": True, "prompt_cache_key": "k"}, {"store": None, "prompt_cache_key": None}),
    # Accepted and ignored, as Anthropic's own OpenAI compatibility layer does.
    ("logprobs ignored", {"logprobs": True, "top_logprobs": 3}, {"logprobs": None, "top_logprobs": None}),
    ("logit_bias ignored", {"logit_bias": {"50256": -100}}, {"logit_bias": None}),
    ("audio ignored", {"audio": {"voice": "alloy", "format": "wav"}, "modalities": ["text", "audio"]},
     {"audio": None, "modalities": None}),
    (
        "response_format json_schema → output_config",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}},
            }
        },
        {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
    ),
    (
        "response_format json_object → system instruction",
        {"response_format": {"type": "json_object"}},
        {"system": JSON_OBJECT_INSTRUCTION},
    ),
]


@pytest.mark.parametrize(("fields", "expected"), [r[1:] for r in PARAM_ROWS], ids=[r[0] for r in PARAM_ROWS])
def test_parameter_rows(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = translate(**fields)
    for key, value in expected.items():
        if value is None:
            assert key not in body
        else:
            assert body[key] == value


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": "Weather",
    "input_schema": TOOL["function"]["parameters"],
}  # type: ignore[index]

TOOL_ROWS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("tool with parameters", {"tools": [TOOL]}, {"tools": [ANTHROPIC_TOOL], "tool_choice": None}),
    (
        "tool without parameters gets default schema",
        {"tools": [{"type": "function", "function": {"name": "now"}}]},
        {"tools": [{"name": "now", "input_schema": {"type": "object", "properties": {}}}]},
    ),
    (
        "parameters without type get type object",
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"properties": {}}}}]},
        {"tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]},
    ),
    (
        "tool cache_control kept",
        {"tools": [{**TOOL, "cache_control": EPHEMERAL}]},
        {"tools": [{**ANTHROPIC_TOOL, "cache_control": EPHEMERAL}]},
    ),
    ("tool_choice auto", {"tools": [TOOL], "tool_choice": "auto"}, {"tool_choice": {"type": "auto"}}),
    ("tool_choice required", {"tools": [TOOL], "tool_choice": "required"}, {"tool_choice": {"type": "any"}}),
    ("tool_choice none", {"tools": [TOOL], "tool_choice": "none"}, {"tool_choice": {"type": "none"}}),
    (
        "tool_choice function",
        {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        {"tool_choice": {"type": "tool", "name": "get_weather"}},
    ),
    (
        "parallel false without tool_choice",
        {"tools": [TOOL], "parallel_tool_calls": False},
        {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
    ),
    (
        "parallel false with required",
        {"tools": [TOOL], "tool_choice": "required", "parallel_tool_calls": False},
        {"tool_choice": {"type": "any", "disable_parallel_tool_use": True}},
    ),
    (
        "parallel false with named tool",
        {
            "tools": [TOOL],
            "tool_choice": {"type": "function", "function": {"name": "g"}},
            "parallel_tool_calls": False,
        },
        {"tool_choice": {"type": "tool", "name": "g", "disable_parallel_tool_use": True}},
    ),
    (
        "parallel false with none",
        {"tools": [TOOL], "tool_choice": "none", "parallel_tool_calls": False},
        {"tool_choice": {"type": "none"}},
    ),
    ("parallel true is the default", {"tools": [TOOL], "parallel_tool_calls": True}, {"tool_choice": None}),
    ("tool_choice without tools not sent", {"tool_choice": "required"}, {"tool_choice": None, "tools": None}),
]


@pytest.mark.parametrize(("fields", "expected"), [r[1:] for r in TOOL_ROWS], ids=[r[0] for r in TOOL_ROWS])
def test_tool_rows(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = translate(**fields)
    for key, value in expected.items():
        if value is None:
            assert key not in body
        else:
            assert body[key] == value


# (id, OpenAI messages, expected Anthropic system (None = absent), expected Anthropic messages)
MESSAGE_ROWS: list[tuple[str, list[dict[str, Any]], Any, list[dict[str, Any]]]] = [
    (
        "system string",
        [{"role": "system", "content": "Be brief."}, USER],
        "Be brief.",
        [{"role": "user", "content": [text("hi")]}],
    ),
    (
        "developer message",
        [{"role": "developer", "content": "Dev rules."}, USER],
        "Dev rules.",
        [{"role": "user", "content": [text("hi")]}],
    ),
    (
        "system messages at any position, in order; neighbours merge",
        [
            {"role": "system", "content": "One."},
            {"role": "user", "content": "a"},
            {"role": "developer", "content": "Two."},
            {"role": "user", "content": "b"},
        ],
        "One.\n\nTwo.",
        [{"role": "user", "content": [text("a"), text("b")]}],
    ),
    (
        "system array content",
        [{"role": "system", "content": [text("Part 1."), text("Part 2.")]}, USER],
        "Part 1.\n\nPart 2.",
        [{"role": "user", "content": [text("hi")]}],
    ),
    (
        "system cache_control keeps blocks",
        [
            {"role": "system", "content": [text("Long prompt", cache_control=EPHEMERAL)]},
            {"role": "system", "content": "Tail"},
            USER,
        ],
        [text("Long prompt", cache_control=EPHEMERAL), text("Tail")],
        [{"role": "user", "content": [text("hi")]}],
    ),
    (
        "message-level cache_control on system",
        [{"role": "system", "content": "S", "cache_control": EPHEMERAL}, USER],
        [text("S", cache_control=EPHEMERAL)],
        [{"role": "user", "content": [text("hi")]}],
    ),
    (
        "text parts and cache_control on user parts",
        [{"role": "user", "content": [text("a"), text("b", cache_control=EPHEMERAL), text(""), text("\t ")]}],
        None,
        [{"role": "user", "content": [text("a"), text("b", cache_control=EPHEMERAL)]}],
    ),
    (
        "data URI image → base64 source",
        [
            {
                "role": "user",
                "content": [
                    text("look"),
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
                    },
                ],
            }
        ],
        None,
        [
            {
                "role": "user",
                "content": [
                    text("look"),
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                    },
                ],
            }
        ],
    ),
    (
        "http image → url source",
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}}],
            }
        ],
        None,
        [
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}}],
            }
        ],
    ),
    (
        "inline PDF file part → document",
        [
            {
                "role": "user",
                "content": [{"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}}],
            }
        ],
        None,
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
                    }
                ],
            }
        ],
    ),
    (
        "assistant content + tool_calls → text then tool_use",
        [
            USER,
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    call("call_1", "get_weather", '{"city": "Paris"}'),
                    call("call_2", "get_time", '{"tz": "CET"}'),
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
        ],
        None,
        [
            {"role": "user", "content": [text("hi")]},
            {
                "role": "assistant",
                "content": [
                    text("Checking."),
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {"tz": "CET"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "noon"},
                ],
            },
        ],
    ),
    (
        "assistant with empty content and tool_calls → tool_use only",
        [
            USER,
            {"role": "assistant", "content": "", "tool_calls": [call("c", "f", "{}")]},
            {"role": "tool", "tool_call_id": "c", "content": "ok"},
        ],
        None,
        [
            {"role": "user", "content": [text("hi")]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "c", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c", "content": "ok"}]},
        ],
    ),
    (
        "tool results merged with the following user message",
        [
            USER,
            {"role": "assistant", "content": None, "tool_calls": [call("c", "f", "{}")]},
            {"role": "tool", "tool_call_id": "c", "content": [text("r1")]},
            {"role": "user", "content": "and now?"},
        ],
        None,
        [
            {"role": "user", "content": [text("hi")]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "c", "name": "f", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "c", "content": [text("r1")]},
                    text("and now?"),
                ],
            },
        ],
    ),
    (
        "user text between tool results: tool_result blocks still come first",
        [
            USER,
            {"role": "assistant", "tool_calls": [call("a", "f", "{}"), call("b", "f", "{}")]},
            {"role": "tool", "tool_call_id": "a", "content": "A"},
            {"role": "user", "content": "note"},
            {"role": "tool", "tool_call_id": "b", "content": ""},
        ],
        None,
        [
            {"role": "user", "content": [text("hi")]},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "a", "name": "f", "input": {}},
                    {"type": "tool_use", "id": "b", "name": "f", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "a", "content": "A"},
                    {"type": "tool_result", "tool_use_id": "b"},
                    text("note"),
                ],
            },
        ],
    ),
    (
        "consecutive assistant messages merged",
        [USER, {"role": "assistant", "content": "a"}, {"role": "assistant", "content": [text("b")]}, USER],
        None,
        [
            {"role": "user", "content": [text("hi")]},
            {"role": "assistant", "content": [text("a"), text("b")]},
            {"role": "user", "content": [text("hi")]},
        ],
    ),
    (
        "empty and blank messages skipped",
        [
            USER,
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": [text(" \n")]},
            {"role": "user", "content": "again"},
            {"role": "user", "content": "  "},
        ],
        None,
        [{"role": "user", "content": [text("hi"), text("again")]}],
    ),
    (
        "final assistant prefill loses trailing whitespace",
        [USER, {"role": "assistant", "content": "Answer: "}],
        None,
        [{"role": "user", "content": [text("hi")]}, {"role": "assistant", "content": [text("Answer:")]}],
    ),
    (
        "conversation starting with assistant gets a user turn first",
        [{"role": "system", "content": "S"}, {"role": "assistant", "content": "Hello!"}, USER],
        "S",
        [
            {"role": "user", "content": [text(".")]},
            {"role": "assistant", "content": [text("Hello!")]},
            {"role": "user", "content": [text("hi")]},
        ],
    ),
]


@pytest.mark.parametrize(
    ("messages", "system", "expected"), [r[1:] for r in MESSAGE_ROWS], ids=[r[0] for r in MESSAGE_ROWS]
)
def test_message_rows(messages: list[dict[str, Any]], system: Any, expected: list[dict[str, Any]]) -> None:
    body = openai_to_anthropic_request({"model": "claude-x", "messages": messages}).body
    assert body["messages"] == expected
    if system is None:
        assert "system" not in body
    else:
        assert body["system"] == system


@pytest.mark.parametrize("arguments", ["{not json", "", "[1, 2]", "null"])
def test_unusable_tool_arguments_become_empty_object_with_warning(arguments: str) -> None:
    result = openai_to_anthropic_request(
        {
            "model": "claude-x",
            "messages": [
                USER,
                {"role": "assistant", "tool_calls": [call("call_9", "f", arguments)]},
                {"role": "tool", "tool_call_id": "call_9", "content": "x"},
            ],
        }
    )
    assert result.body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_9", "name": "f", "input": {}}
    ]
    assert len(result.warnings) == 1 and "call_9" in result.warnings[0]


def test_valid_arguments_give_no_warning() -> None:
    result = openai_to_anthropic_request(
        {
            "model": "claude-x",
            "messages": [
                USER,
                {"role": "assistant", "tool_calls": [call("c", "f", '{"a": [1, {"b": null}]}')]},
                {"role": "tool", "tool_call_id": "c", "content": "x"},
            ],
        }
    )
    assert result.body["messages"][1]["content"][0]["input"] == {"a": [1, {"b": None}]}
    assert result.warnings == []


@pytest.mark.parametrize(
    ("stream", "options", "include_usage"),
    [
        (True, {"include_usage": True}, True),
        (True, {"include_usage": False}, False),
        (True, None, False),
        (False, {"include_usage": True}, False),
    ],
)
def test_include_usage_comes_from_stream_options(stream: bool, options: Any, include_usage: bool) -> None:
    body: dict[str, Any] = {"model": "claude-x", "messages": [USER], "stream": stream}
    if options is not None:
        body["stream_options"] = options
    assert openai_to_anthropic_request(body).include_usage is include_usage


def test_temperature_with_top_p_warns_that_top_p_was_not_sent() -> None:
    result = openai_to_anthropic_request(
        {"model": "claude-x", "messages": [USER], "temperature": 0, "top_p": 1}
    )
    assert result.body["temperature"] == 0
    assert any("top_p" in w for w in result.warnings)


def test_sampling_parameters_can_be_withheld() -> None:
    body = {"model": "claude-x", "messages": [USER], "temperature": 0.2, "top_p": 0.5, "top_k": 3}
    result = openai_to_anthropic_request(body, send_sampling_params=False)
    assert not {"temperature", "top_p", "top_k"} & result.body.keys()
    assert result.warnings == ["sampling parameters not sent to Anthropic: temperature, top_p, top_k"]


def test_default_max_tokens_is_configurable() -> None:
    body = {"model": "claude-x", "messages": [USER]}
    assert openai_to_anthropic_request(body, default_max_tokens=777).body["max_tokens"] == 777


def test_json_object_instruction_appends_to_existing_system_and_warns() -> None:
    result = openai_to_anthropic_request(
        {
            "model": "claude-x",
            "messages": [{"role": "system", "content": "Be brief."}, USER],
            "response_format": {"type": "json_object"},
        }
    )
    assert result.body["system"] == f"Be brief.\n\n{JSON_OBJECT_INSTRUCTION}"
    assert any("json_object" in w for w in result.warnings)


def test_model_and_messages_pass_through_and_input_is_not_mutated() -> None:
    body = {
        "model": "claude-opus-4-1",
        "messages": [
            {"role": "system", "content": [text("S", cache_control=EPHEMERAL)]},
            USER,
            {"role": "assistant", "content": "x ", "tool_calls": [call("c", "f", "bad")]},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"properties": {}}}}],
        "stop": ["", "x"],
    }
    before = copy.deepcopy(body)
    out = openai_to_anthropic_request(body).body
    assert out["model"] == "claude-opus-4-1"
    assert body == before


# (id, OpenAI fields, param named in the error)
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("n>1", {"n": 2}, "n"),
    ("legacy functions", {"functions": [{"name": "f"}]}, "functions"),
    ("legacy function_call", {"function_call": "auto"}, "function_call"),
    ("web_search_options", {"web_search_options": {}}, "web_search_options"),
]


@pytest.mark.parametrize(("fields", "param"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_unsupported_parameters_are_refused_by_name(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as info:
        translate(**fields)
    assert info.value.param == param
    assert info.value.code == "unsupported_parameter"
    assert param in info.value.message
    error = info.value.to_openai()["error"]
    assert error == {
        "message": info.value.message,
        "type": "invalid_request_error",
        "param": param,
        "code": "unsupported_parameter",
    }


# (id, whole OpenAI body, param, code)
INVALID: list[tuple[str, Any, str | None, str]] = [
    ("missing model", {"messages": [USER]}, "model", "missing_required_parameter"),
    ("missing messages", {"model": "claude-x"}, "messages", "missing_required_parameter"),
    ("empty messages", {"model": "claude-x", "messages": []}, "messages", "invalid_value"),
    (
        "only system messages",
        {"model": "claude-x", "messages": [{"role": "system", "content": "S"}]},
        "messages",
        "invalid_value",
    ),
    ("body not an object", ["x"], None, "invalid_type"),
    (
        "unknown role",
        {"model": "claude-x", "messages": [{"role": "function", "content": "x"}]},
        "messages[0].role",
        "invalid_value",
    ),
    (
        "tool message without id",
        {"model": "claude-x", "messages": [USER, {"role": "tool", "content": "x"}]},
        "messages[1].tool_call_id",
        "missing_required_parameter",
    ),
    (
        "audio input part",
        {
            "model": "claude-x",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}],
                }
            ],
        },
        "messages[0].content[0]",
        "unsupported_parameter",
    ),
    (
        "unsupported image type",
        {
            "model": "claude-x",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}],
                }
            ],
        },
        "messages[0].content[0]",
        "unsupported_value",
    ),
    (
        "non-http image URL",
        {
            "model": "claude-x",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}],
                }
            ],
        },
        "messages[0].content[0]",
        "invalid_value",
    ),
    (
        "uploaded file id",
        {
            "model": "claude-x",
            "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}],
        },
        "messages[0].content[0]",
        "unsupported_value",
    ),
    (
        "max_tokens not an int",
        {"model": "claude-x", "messages": [USER], "max_tokens": "10"},
        "max_tokens",
        "invalid_value",
    ),
    ("stop not strings", {"model": "claude-x", "messages": [USER], "stop": [1]}, "stop", "invalid_type"),
    (
        "non-function tool",
        {"model": "claude-x", "messages": [USER], "tools": [{"type": "custom", "custom": {}}]},
        "tools[0]",
        "unsupported_value",
    ),
    (
        "json_schema without schema",
        {
            "model": "claude-x",
            "messages": [USER],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
        },
        "response_format",
        "invalid_value",
    ),
]


@pytest.mark.parametrize(("body", "param", "code"), [r[1:] for r in INVALID], ids=[r[0] for r in INVALID])
def test_invalid_requests_raise_translation_error(body: Any, param: str | None, code: str) -> None:
    with pytest.raises(TranslationError) as info:
        openai_to_anthropic_request(body)
    assert info.value.param == param
    assert info.value.code == code
    assert info.value.message
