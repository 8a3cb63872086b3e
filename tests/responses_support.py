"""Helpers for the Responses pair tests: a context, SSE frame parsing, SDK validation of every event."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from openai._models import construct_type
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from iron_tui.core.dialects.base import Pair, RequestContext, Translated

_EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def context(model: str = "claude-sonnet-4-6", *, stream: bool = False, max_output: int | None = 64_000,
            previous: list[dict[str, Any]] | None = None) -> RequestContext:
    counter = itertools.count(1)
    return RequestContext(model=model, client_model=model, stream=stream, created=1_767_225_600,
                          max_output_tokens=max_output, previous_items=previous,
                          new_id=lambda prefix: f"{prefix}_{next(counter):04d}")


def translate(pair: Pair, body: dict[str, Any], *, model: str | None = None,
              **kw: Any) -> tuple[Translated, RequestContext]:
    ctx = context(model or body.get("model", "claude-sonnet-4-6"), stream=body.get("stream") is True, **kw)
    tr = pair.request(body, ctx)
    ctx.state = tr.state
    return tr, ctx


def frames(chunks: list[bytes], *, strict: bool = True) -> list[dict[str, Any]]:
    """Parse `event:`/`data:` frames; check each is one complete event whose name matches its type, and
    that the official SDK's event types accept it (`strict`: validated, as for everything iron-tui makes;
    else read the lenient way the SDK's client reads them, for recordings made by older APIs)."""
    out = []
    for frame in chunks:
        assert frame.endswith(b"\n\n")
        head, data = frame[:-2].split(b"\n")
        obj = orjson.loads(data[len(b"data: "):])
        assert head == b"event: " + obj["type"].encode()
        if strict:
            _EVENTS.validate_python(obj)
        else:
            parsed = construct_type(type_=ResponseStreamEvent, value=obj)
            assert getattr(parsed, "type", None) == obj["type"]
        out.append(obj)
    return out


def run_stream(pair: Pair, ctx: RequestContext, events: list[tuple[str, dict[str, Any]]]) -> tuple[
        list[dict[str, Any]], Any]:
    st = pair.stream(ctx)
    out: list[bytes] = []
    for name, data in events:
        out.extend(st.feed(name, data))
    if not st.done:
        out.extend(st.finish())
    evs = frames(out)
    assert [e["sequence_number"] for e in evs] == list(range(len(evs)))
    return evs, st


def sdk_response(obj: dict[str, Any], *, strict: bool = True) -> Response:
    if strict:
        return Response.model_validate(obj)
    parsed = construct_type(type_=Response, value=obj)
    assert isinstance(parsed, Response)
    return parsed


def without_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k != "id"} for item in items]
