"""Request bodies shaped like a coding agent's, mid-session (~130 KB): a long system prompt, tool
definitions, and dozens of tool calls on files with their results. Benchmarks with a two-line chat
miss whatever grows with the body (parsing, the input bound, previews, scans); these do not."""

from __future__ import annotations

from typing import Any

TURNS = 60


def agent_messages_request() -> dict[str, Any]:
    """Anthropic Messages, as Claude Code sends it."""
    msgs: list[dict[str, Any]] = [{"role": "user", "content": "Fix the failing test in src/app."}]
    for i in range(TURNS):
        msgs.append({"role": "assistant", "content": [
            {"type": "text", "text": "Let me look at that file. " * 8},
            {"type": "tool_use", "id": f"toolu_{i}", "name": "Read", "input": {"file_path": f"/src/app/m{i}.py"}}]})
        msgs.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": "    return value  # code\n" * 60}]})
    tools = [{"name": f"Tool{i}", "description": "Reads a file from the local filesystem. " * 12,
              "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}
             for i in range(20)]
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "tools": tools, "messages": msgs,
            "system": [{"type": "text", "text": "You are Claude Code, an interactive CLI tool. " * 120}]}


def agent_chat_request() -> dict[str, Any]:
    """OpenAI Chat Completions, as an agent on the OpenAI SDK sends it (the same session)."""
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a coding agent in a terminal. " * 120},
        {"role": "user", "content": "Fix the failing test in src/app."}]
    for i in range(TURNS):
        msgs.append({"role": "assistant", "content": "Let me look at that file. " * 8, "tool_calls": [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": "read_file", "arguments": f'{{"file_path": "/src/app/m{i}.py"}}'}}]})
        msgs.append({"role": "tool", "tool_call_id": f"call_{i}", "content": "    return value  # code\n" * 60})
    tools = [{"type": "function", "function": {
        "name": f"tool_{i}", "description": "Reads a file from the local filesystem. " * 12,
        "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}}}} for i in range(20)]
    return {"model": "gpt-4o-mini", "max_tokens": 64, "tools": tools, "messages": msgs}
