"""Calls out of iron-tui: as a curl command line, as JSON Lines, as a HAR 1.2 archive.

Bodies are the recorded previews (provider keys already redacted). The token never appears: curl
commands read it from `$IRON_TOKEN`, HAR headers carry the same placeholder.

    curl_command(summary, record, base_url)           # str, for the clipboard
    write_jsonl(path, calls); write_har(path, calls)  # calls: [(summary, record or None)], any order
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from iron_tui import __version__
from iron_tui.core.transcript import TRUNCATED_MARK

TOKEN_VAR = "IRON_TOKEN"
ANTHROPIC_VERSION = "2023-06-01"
Call = tuple[dict[str, Any], Any]  # (RequestRecord.summary(), the RequestRecord when still held, else None)


class ExportError(ValueError):
    """Why a call cannot be exported or replayed as asked (a message for the user)."""


def replayable_body(record: Any) -> str:
    """The agent's request body as recorded, or ExportError when it is missing or was cut short."""
    body = None if record is None else getattr(record, "request_body", None)
    if body is None:
        raise ExportError("the request body is not available: only the last calls are kept in memory "
                          "with their bodies (history_size)")
    if TRUNCATED_MARK in body:
        raise ExportError("the recorded request body was cut at the preview limit (body_preview_bytes), "
                          "so it cannot be sent again as it was")
    return body


def auth_headers(path: str) -> list[tuple[str, str]]:
    """The headers a client sends on `path`, with the token as `$IRON_TOKEN`."""
    if path.endswith("/messages") or path.endswith("/messages/count_tokens"):
        return [("x-api-key", f"${TOKEN_VAR}"), ("anthropic-version", ANTHROPIC_VERSION)]
    return [("authorization", f"Bearer ${TOKEN_VAR}")]


def curl_command(summary: dict[str, Any], record: Any, base_url: str) -> str:
    """A shell command that sends the same request through iron-tui again (export IRON_TOKEN first)."""
    body = replayable_body(record)
    try:
        body = json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        pass  # sent as recorded
    url = base_url.rstrip("/") + str(summary.get("path") or "/v1/chat/completions")
    parts = ["curl -sS" + (" -N" if summary.get("stream") else ""), shlex.quote(url)]
    for name, value in auth_headers(str(summary.get("path") or "")):
        # Double quotes so the shell expands $IRON_TOKEN; the rest is plain.
        parts.append(f'-H "{name}: {value}"')
    parts.append("-H " + shlex.quote("content-type: application/json"))
    parts.append("--data-binary " + shlex.quote(body))
    return " \\\n  ".join(parts)


# --- JSON Lines ----------------------------------------------------------------------------------


def _ordered(calls: Iterable[Call]) -> list[Call]:
    return sorted(calls, key=lambda c: (str(c[0].get("started_at") or ""), str(c[0].get("id"))))


def jsonl_lines(calls: Iterable[Call]) -> Iterator[str]:
    """One JSON object per call, oldest first: the summary, plus the bodies when they are still held."""
    for summary, record in _ordered(calls):
        obj = dict(summary)
        if record is not None:
            obj["request_body"] = getattr(record, "request_body", None)
            obj["upstream_request_body"] = getattr(record, "translated_request", None)
            obj["upstream_response_body"] = getattr(record, "upstream_response", None)
            obj["response_body"] = (getattr(record, "translated_response", None) if summary.get("translated")
                                    else getattr(record, "upstream_response", None))
            obj["warnings"] = list(getattr(record, "warnings", []) or [])
        yield json.dumps(obj, ensure_ascii=False)


def write_jsonl(path: Path, calls: Iterable[Call]) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for line in jsonl_lines(calls):
            f.write(line + "\n")
            n += 1
    return n


# --- HAR 1.2 -------------------------------------------------------------------------------------


def _headers(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": n, "value": v} for n, v in pairs]


def har_entry(summary: dict[str, Any], record: Any, base_url: str) -> dict[str, Any]:
    path = str(summary.get("path") or "")
    latency = float(summary.get("latency_ms") or 0.0)
    ttft = summary.get("ttft_ms")
    wait = min(latency, float(ttft)) if isinstance(ttft, int | float) else latency
    req_body = None if record is None else getattr(record, "request_body", None)
    if record is None:
        resp_body = None
    elif summary.get("translated"):
        resp_body = getattr(record, "translated_response", None)
    else:
        resp_body = getattr(record, "upstream_response", None)
    status = summary.get("status") if isinstance(summary.get("status"), int) else 0
    resp_type = "text/event-stream" if summary.get("stream") and status == 200 else "application/json"
    req_headers = [*auth_headers(path), ("content-type", "application/json")]
    if summary.get("agent_id"):
        req_headers.append(("x-iron-agent-id", str(summary["agent_id"])))
    resp_headers = [("content-type", resp_type), ("x-iron-request-id", str(summary.get("id")))]
    if isinstance(summary.get("cost_usd"), int | float):
        resp_headers.append(("x-iron-cost-usd", f"{summary['cost_usd']:.6f}"))
    request: dict[str, Any] = {
        "method": "POST", "url": base_url.rstrip("/") + path, "httpVersion": "HTTP/1.1", "cookies": [],
        "headers": _headers(req_headers), "queryString": [], "headersSize": -1,
        "bodySize": -1 if req_body is None else len(req_body.encode()),
    }
    if req_body is not None:
        request["postData"] = {"mimeType": "application/json", "text": req_body}
    content: dict[str, Any] = {"size": -1 if resp_body is None else len(resp_body.encode()), "mimeType": resp_type}
    if resp_body is not None:
        content["text"] = resp_body
    return {
        "startedDateTime": summary.get("started_at"),
        "time": latency,
        "request": request,
        "response": {
            "status": status, "statusText": "", "httpVersion": "HTTP/1.1", "cookies": [],
            "headers": _headers(resp_headers), "content": content, "redirectURL": "", "headersSize": -1,
            "bodySize": content["size"],
        },
        "cache": {},
        "timings": {"send": 0, "wait": wait, "receive": max(0.0, latency - wait)},
        "comment": summary.get("error") or "",
        "_iron": summary,
    }


def har_document(calls: Iterable[Call], base_url: str) -> dict[str, Any]:
    return {"log": {"version": "1.2", "creator": {"name": "iron-tui", "version": __version__},
                    "entries": [har_entry(s, r, base_url) for s, r in _ordered(calls)]}}


def write_har(path: Path, calls: Iterable[Call], base_url: str) -> int:
    doc = har_document(calls, base_url)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return len(doc["log"]["entries"])
