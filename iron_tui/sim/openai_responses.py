"""Simulated OpenAI Responses API (`POST /v1/responses`), answering what Codex, the Agents SDK and the
openai SDK send — and refusing, in OpenAI's words, what OpenAI refuses where a client or a translator
can get it wrong:

- tools: function, custom, namespace (Codex), and the hosted types (accepted; only web search is ever
  "called"); an unknown type is a 400. With a `web_search*` tool and a final user turn the output starts
  with `web_search_call` items, as OpenAI records them (one, or `[[sim:searches=N]]`). With tools and a final user turn the reply is tool calls (`[[sim:tools=N]]`, one when
  `parallel_tool_calls` is false); after a tool output, text ("Simulated reply to tool result: …").
- every function/custom call in the input needs its output and every output its call;
- reasoning (models gpt-5*, o*): a reasoning item first, with a summary when `reasoning.summary` is set
  and `encrypted_content` when `include` asks for it; a reasoning item sent back must carry the sim's
  own encrypted content (or, with `store` not false, just its id); `reasoning` on gpt-4* is a 400;
- `text.format` json_schema → JSON with the schema's property names;
- `previous_response_id` → the stored response (kept unless `store: false`), else OpenAI's 400.
Streams carry the full event sequence with sequence numbers.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

from aiohttp import web

from iron_tui.sim.script import (
    LEAD,
    TOOL_LEAD,
    TextReply,
    make_text,
    split_json,
    tokens_for_chars,
    tool_arguments,
)

__all__ = ["ResponsesState", "build_response", "response_events"]

_HOSTED = frozenset({
    "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11", "file_search",
    "code_interpreter", "computer_use_preview", "computer", "image_generation", "mcp", "local_shell", "shell",
    "apply_patch", "tool_search",
})  # fmt: skip
_TOOL_TYPES = ("function", "custom", "namespace", *sorted(_HOSTED))
_ENC = "sim-enc:"
_KEEP = 2048


class ResponsesState:
    """Responses the sim stored (for previous_response_id), newest last, bounded."""

    def __init__(self) -> None:
        self.stored: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def keep(self, rid: str, items: list[dict[str, Any]]) -> None:
        self.stored[rid] = items
        while len(self.stored) > _KEEP:
            self.stored.popitem(last=False)


class Refusal(Exception):
    def __init__(self, message: str, param: str | None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def _reasoning_model(model: str) -> bool:
    return model.startswith(("gpt-5", "o1", "o3", "o4", "codex"))


def _flat_tools(tools: Any) -> list[tuple[dict[str, Any], str | None]]:
    """(tool, namespace) for every callable (function/custom) tool; unknown types refused."""
    out: list[tuple[dict[str, Any], str | None]] = []
    for i, tool in enumerate(tools if isinstance(tools, list) else ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in _TOOL_TYPES:
            raise Refusal(f"Invalid value: '{kind}'. Supported values are: " + ", ".join(f"'{t}'" for t in _TOOL_TYPES)
                          + ".", f"tools[{i}].type", "invalid_value")
        assert isinstance(tool, dict)
        if kind in ("function", "custom"):
            if not isinstance(tool.get("name"), str):
                raise Refusal(f"Missing required parameter: 'tools[{i}].name'.", f"tools[{i}].name",
                              "missing_required_parameter")
            out.append((tool, None))
        elif kind == "namespace":
            out.extend((t, tool.get("name")) for t in tool.get("tools") or () if isinstance(t, dict))
    return out


def _text_of(content: Any) -> tuple[str, int]:
    if isinstance(content, str):
        return content, len(content)
    texts = [p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)] \
        if isinstance(content, list) else []
    other = sum(340 for p in content if isinstance(p, dict) and p.get("type") in ("input_image", "input_file")) \
        if isinstance(content, list) else 0
    return " ".join(texts), sum(len(t) for t in texts) + other


def _scan(body: dict[str, Any], items: list[Any]) -> tuple[int, str, str]:
    """(input chars, kind of the last item: user | tool | other, its text); OpenAI's input checks."""
    chars, last_kind, last_text = 0, "user", ""
    calls: set[str] = set()
    outputs: set[str] = set()
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"role": "user", "content": item}
        if not isinstance(item, dict):
            raise Refusal(f"Invalid type for 'input[{i}]': expected an object.", f"input[{i}]", "invalid_type")
        kind = item.get("type", "message")
        if kind == "message":
            if item.get("role") not in ("user", "assistant", "system", "developer"):
                raise Refusal(f"Invalid value: '{item.get('role')}'. Supported values are: 'assistant', 'system', "
                              "'developer', and 'user'.", f"input[{i}].role", "invalid_value")
            last_text, n = _text_of(item.get("content"))
            last_kind = "user" if item["role"] == "user" else "other"
            chars += n
        elif kind in ("function_call", "custom_tool_call"):
            calls.add(str(item.get("call_id")))
            chars += len(json.dumps(item))
            last_kind = "other"
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = str(item.get("call_id"))
            if call_id not in calls:
                raise Refusal(f"No tool call found for function call output with call_id {call_id}.", "input")
            outputs.add(call_id)
            out = item.get("output")
            last_text = out if isinstance(out, str) else _text_of(out)[0]
            last_kind = "tool"
            chars += len(last_text)
        elif kind == "reasoning":
            enc = item.get("encrypted_content")
            if enc is None and body.get("store") is False:
                raise Refusal(f"Item with id '{item.get('id')}' not found. Items are not persisted when `store` is "
                              "set to false. Try again with `store` set to true, or remove this item from your input.",
                              "input")
            if enc is not None and not (isinstance(enc, str) and enc.startswith(_ENC)):
                raise Refusal(f"The encrypted content for item {item.get('id')} could not be verified.", "input")
        # other item types (web_search_call, …) are accepted as context
    missing = calls - outputs
    if missing:
        raise Refusal(f"No tool output found for function call {sorted(missing)[0]}.", "input")
    return chars, last_kind, last_text


def build_response(body: dict[str, Any], state: ResponsesState, rid: str, n: int, words: int, prompt_text: str,
                   tools_wanted: int | None, usage: bool, *, searches: int | None = None) -> dict[str, Any]:
    """The response object for `body` (raises Refusal for what OpenAI refuses)."""
    model = body["model"]
    if body.get("reasoning") and isinstance(body["reasoning"], dict) and body["reasoning"].get("effort") \
            and not _reasoning_model(model):
        raise Refusal(f"Unsupported parameter: 'reasoning.effort' is not supported with the '{model}' model.",
                      "reasoning.effort", "unsupported_parameter")
    items: list[Any] = []
    prev = body.get("previous_response_id")
    if prev is not None:
        if prev not in state.stored:
            raise Refusal(f"Previous response with id '{prev}' not found.", "previous_response_id",
                          "previous_response_not_found")
        items.extend(state.stored[prev])
    raw = body.get("input")
    own = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
    items.extend(own)
    tools = _flat_tools(body.get("tools"))
    chars, last_kind, last_text = _scan(body, items)
    instructions = body.get("instructions")
    chars += len(instructions) if isinstance(instructions, str) else 0
    chars += sum(len(json.dumps(t)) for t, _ in tools)
    max_out = body.get("max_output_tokens") if isinstance(body.get("max_output_tokens"), int) else None
    output: list[dict[str, Any]] = []
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else None
    reasoning_tokens = 0
    if _reasoning_model(model) and reasoning is not None and reasoning.get("effort") not in (None, "none"):
        summary = f"Simulated reasoning about: {' '.join(last_text.split()[:8])}"
        reasoning_tokens = tokens_for_chars(len(summary))
        include = body.get("include") or []
        output.append({"id": f"rs_sim{n:020d}", "type": "reasoning",
                       "summary": [{"type": "summary_text", "text": summary}] if reasoning.get("summary") else [],
                       "encrypted_content": _ENC + str(n) if "reasoning.encrypted_content" in include else None})
    choice = body.get("tool_choice")
    if last_kind == "user" and choice != "none":
        output.extend(_web_search_calls(body, n, prompt_text, searches))
    reply: TextReply | None = None
    if tools and last_kind == "user" and choice != "none":
        wanted = 1 if body.get("parallel_tool_calls") is False else max(tools_wanted or 1, 1)
        for k, (tool, ns) in enumerate(tools[:wanted]):
            call = {"id": f"fc_sim{n:018d}{k:02d}", "call_id": f"call_sim{n:016d}{k:02d}", "name": tool["name"],
                    "status": "completed"}
            if tool.get("type") == "custom":
                call.update(type="custom_tool_call", input=f"sim input for {tool['name']}")
            else:
                call.update(type="function_call", arguments=json.dumps(tool_arguments(tool.get("parameters"))))
            if ns:
                call["namespace"] = ns
            output.append(call)
    else:
        fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            text = json.dumps(tool_arguments(fmt.get("schema")))
            reply = TextReply(text, split_json(text, 4), tokens_for_chars(len(text)), "stop")
        elif last_kind == "tool":
            reply = make_text(last_text, words, max_out, None, TOOL_LEAD)
        else:
            reply = make_text(prompt_text, words, max_out, None, LEAD)
        output.append({"id": f"msg_sim{n:020d}", "type": "message", "role": "assistant",
                       "status": "incomplete" if reply.finish == "length" else "completed",
                       "content": [{"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}]})
    out_tokens = reasoning_tokens + (reply.tokens if reply else sum(
        tokens_for_chars(len(json.dumps(c))) for c in output if c["type"] not in ("reasoning", "web_search_call")))
    incomplete = reply is not None and reply.finish == "length"
    input_tokens = tokens_for_chars(chars)
    resp = {
        "id": rid, "object": "response", "created_at": int(time.time()),
        "status": "incomplete" if incomplete else "completed", "background": False, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": instructions, "max_output_tokens": max_out, "model": model, "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True), "previous_response_id": prev,
        "reasoning": {"effort": (reasoning or {}).get("effort"), "summary": (reasoning or {}).get("summary")},
        "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []), "top_p": body.get("top_p", 1.0), "truncation": "disabled",
        "usage": {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens": out_tokens, "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                  "total_tokens": input_tokens + out_tokens} if usage else None,
        "user": None, "metadata": body.get("metadata") or {},
    }
    if body.get("store") is not False:
        state.keep(rid, [*own, *output])
    return resp


def _web_search_calls(body: dict[str, Any], n: int, prompt_text: str, searches: int | None) -> list[dict[str, Any]]:
    """The `web_search_call` items of the searches run for a request with a web search tool (OpenAI's shape,
    as recorded in tests/cassettes/openai_responses/; `sources` only when `include` asks for them)."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not any(
            isinstance(t, dict) and str(t.get("type")).startswith("web_search") for t in tools):
        return []
    query = " ".join(prompt_text.split()[:8]) or "search"
    include = body.get("include")
    sources = isinstance(include, list) and "web_search_call.action.sources" in include
    out: list[dict[str, Any]] = []
    for k in range(1 if searches is None else max(0, min(searches, 32))):
        action: dict[str, Any] = {"type": "search", "query": query}
        if sources:
            action["sources"] = [{"type": "url", "url": f"https://example.com/sim/{n}/{k}"}]
        out.append({"id": f"ws_sim{n:018d}{k:02d}", "type": "web_search_call", "status": "completed",
                    "action": action})
    return out


def response_events(final: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The streamed events for a finished response object: (event name, payload without sequence)."""
    pending = {**final, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    evs: list[tuple[str, dict[str, Any]]] = [("response.created", {"response": pending}),
                                             ("response.in_progress", {"response": pending})]
    for i, item in enumerate(final["output"]):
        ids = {"item_id": item["id"], "output_index": i}
        kind = item["type"]
        start = {**item, "status": "in_progress"}
        if kind == "message":
            start["content"] = []
        elif kind == "function_call":
            start["arguments"] = ""
        elif kind == "custom_tool_call":
            start["input"] = ""
        elif kind == "reasoning":
            start = {**item, "summary": [], "encrypted_content": None}
        elif kind == "web_search_call":
            start = {"id": item["id"], "type": kind, "status": "in_progress"}
        evs.append(("response.output_item.added", {"output_index": i, "item": start}))
        if kind == "message":
            part = item["content"][0]
            evs.append(("response.content_part.added", {**ids, "content_index": 0, "part": {**part, "text": ""}}))
            words = part["text"].split(" ")
            for j, w in enumerate(words):
                evs.append(("response.output_text.delta", {**ids, "content_index": 0, "logprobs": [],
                                                           "delta": w if j == 0 else " " + w}))
            evs.append(("response.output_text.done", {**ids, "content_index": 0, "text": part["text"], "logprobs": []}))
            evs.append(("response.content_part.done", {**ids, "content_index": 0, "part": part}))
        elif kind == "function_call":
            for piece in split_json(item["arguments"]):
                evs.append(("response.function_call_arguments.delta", {**ids, "delta": piece}))
            evs.append(("response.function_call_arguments.done", {**ids, "arguments": item["arguments"]}))
        elif kind == "custom_tool_call":
            evs.append(("response.custom_tool_call_input.delta", {**ids, "delta": item["input"]}))
            evs.append(("response.custom_tool_call_input.done", {**ids, "input": item["input"]}))
        elif kind == "web_search_call":
            evs.extend((f"response.web_search_call.{step}", {"output_index": i, "item_id": item["id"]})
                       for step in ("in_progress", "searching", "completed"))
        elif kind == "reasoning" and item["summary"]:
            text = item["summary"][0]["text"]
            evs.append(("response.reasoning_summary_part.added",
                        {**ids, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}))
            evs.append(("response.reasoning_summary_text.delta", {**ids, "summary_index": 0, "delta": text}))
            evs.append(("response.reasoning_summary_text.done", {**ids, "summary_index": 0, "text": text}))
            evs.append(("response.reasoning_summary_part.done",
                        {**ids, "summary_index": 0, "part": {"type": "summary_text", "text": text}}))
        evs.append(("response.output_item.done", {"output_index": i, "item": item}))
    evs.append(("response.incomplete" if final["status"] == "incomplete" else "response.completed", {"response": final}))
    return evs


def sse_events(events: list[tuple[str, dict[str, Any]]]) -> list[bytes]:
    return [f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': seq, **fields})}\n\n".encode()
            for seq, (kind, fields) in enumerate(events)]


def refusal_body(exc: Refusal) -> web.Response:
    err = {"message": exc.message, "type": "invalid_request_error", "param": exc.param, "code": exc.code}
    return web.json_response({"error": err}, status=400)
