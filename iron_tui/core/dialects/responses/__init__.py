"""The OpenAI Responses API as a client dialect, shared by every pair that serves it from another API.

- `items.py`   — the client's `input` (and `previous_response_id` history) as neutral items, validated;
- `tools.py`   — `tools` / `tool_choice` as neutral tools, with the names sent upstream;
- `request.py` — the rest of the request: options that map, options refused, options ignored;
- `output.py`  — the `response` object, its output items, usage, and reasoning kept across turns;
- `events.py`  — the streamed event sequence (`response.created` … `response.completed`).

A pair (e.g. `responses_anthropic/`) only maps these neutral values to and from its provider's API.
"""
