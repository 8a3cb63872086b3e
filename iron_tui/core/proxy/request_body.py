"""A call's JSON body: read within the body timeout and the size limit, parsed, and refused with a clear
error in the caller's shape when it is not a JSON object."""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

from iron_tui.core.proxy.connections import BodyReadError, read_body
from iron_tui.core.proxy.errors import Shape, error_response


async def read_json(request: web.Request, limit: int, timeout: float, shape: Shape,
                     hdrs: dict[str, str]) -> tuple[dict[str, Any], bytes] | web.Response:
    try:
        # In one piece when it came with the headers; else within `timeout` (body_timeout) of them.
        raw = await read_body(request, limit=limit, timeout=timeout)
    except BodyReadError as exc:
        return error_response(shape, exc.status, exc.message, code=exc.code, headers=hdrs)
    try:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = json.loads(raw)  # slower, but its error names the line and column
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        where = (f" at line {exc.lineno} column {exc.colno} (char {exc.pos})"
                 if isinstance(exc, json.JSONDecodeError) else "")
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else (
            "nested too deeply" if isinstance(exc, RecursionError) else str(exc))
        return error_response(shape, 400, f"malformed JSON body: {msg}{where}", code="invalid_json", headers=hdrs)
    if not isinstance(body, dict):
        return error_response(shape, 400, "request body must be a JSON object", headers=hdrs)
    return body, raw
