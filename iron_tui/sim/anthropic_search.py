"""Server-side web searches of the simulated Anthropic API, in the shapes Anthropic records them
(tests/cassettes/anthropic/*web_search*): for a request with a `web_search_*` tool and a final user turn
the reply starts with a `server_tool_use` block (name `web_search`) and its `web_search_tool_result` per
search — one, or `[[sim:searches=N]]` — and `usage.server_tool_use` counts them. Searches past the tool's
`max_uses` get an error result (`max_uses_exceeded`), which Anthropic does not bill or count.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from iron_tui.sim.script import split_json

__all__ = ["MAX_SEARCHES", "search_blocks", "search_events", "searches_billed", "server_tool_usage"]

MAX_SEARCHES = 32


def search_blocks(body: dict[str, Any], prompt: str, searches: int | None,
                  new_id: Callable[[], int]) -> list[dict[str, Any]]:
    """The content blocks of the searches run for `body` (none without a web search tool)."""
    tools = body.get("tools")
    tool = next((t for t in tools if isinstance(t, dict) and str(t.get("type")).startswith("web_search_")),
                None) if isinstance(tools, list) else None
    if tool is None:
        return []
    max_uses = tool.get("max_uses")
    limit = max_uses if isinstance(max_uses, int) else MAX_SEARCHES
    query = " ".join(prompt.split()[:8]) or "search"
    next_id = new_id()
    blocks: list[dict[str, Any]] = []
    for k in range(1 if searches is None else max(0, min(searches, MAX_SEARCHES))):
        use_id = f"srvtoolu_sim{next_id:016d}{k:02d}"
        blocks.append({"type": "server_tool_use", "id": use_id, "name": "web_search", "input": {"query": query}})
        content: Any = [{"type": "web_search_result", "title": f"Simulated result {k + 1} for {query}",
                         "url": f"https://example.com/sim/{next_id}/{k}", "encrypted_content": f"sim{next_id}.{k}",
                         "page_age": None}]
        if k >= limit:
            content = {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}
        blocks.append({"type": "web_search_tool_result", "tool_use_id": use_id, "content": content})
    return blocks


def searches_billed(blocks: list[dict[str, Any]]) -> int:
    return sum(1 for b in blocks if b["type"] == "web_search_tool_result" and isinstance(b["content"], list))


def server_tool_usage(blocks: list[dict[str, Any]]) -> dict[str, int]:
    return {"web_search_requests": searches_billed(blocks), "web_fetch_requests": 0}


def search_events(blocks: list[dict[str, Any]], first_index: int) -> list[bytes]:
    """The stream events of `blocks` from content index `first_index`: a search's query streams as
    input JSON deltas, its result arrives whole in its `content_block_start`."""
    out: list[bytes] = []
    for index, block in enumerate(blocks, first_index):
        if block["type"] == "server_tool_use":
            out.append(_event("content_block_start", {"index": index, "content_block": {**block, "input": {}}}))
            for piece in ["", *split_json(json.dumps(block["input"]))]:
                out.append(_event("content_block_delta", {"index": index, "delta": {
                    "type": "input_json_delta", "partial_json": piece}}))
        else:
            out.append(_event("content_block_start", {"index": index, "content_block": block}))
        out.append(_event("content_block_stop", {"index": index}))
    return out


def _event(name: str, fields: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **fields})}\n\n".encode()
