"""The contract every dialect pair implements (DESIGN.md §1).

A call is a *client dialect* (what the agent speaks) served by a *provider dialect* (what the upstream
speaks). Each (client, provider) pair is one module of pure functions — no I/O, no engine, no aiohttp —
registered in `registry.py`, the one place that picks a pair. The pipeline (`core/proxy/pipeline.py`)
drives every pair the same way:

    tr = pair.request(client_body, ctx)          # → Translated (upstream body + path), or TranslationError
    ... upstream call ...
    client_body = pair.response(upstream, ctx)   # non-stream 200, or UpstreamFormatError
    st = pair.stream(ctx)                        # stream: st.feed(event, data) → client SSE bytes
    frames += st.finish()                        # at upstream EOF (only if not st.done)

What a pair does NOT do (the pipeline does it once for every pair): usage accounting and pricing
(`core/dialects/usage.py`, per provider dialect), error bodies and mid-stream error frames in the
client's shape (`client_error_body`, `client_stream_error` below), redaction of provider keys, output
caps lowered to fit the budget (applied to the upstream body after `request`).

Errors: a client body that cannot be served raises `TranslationError` (→ 400 in the client's shape,
naming `param`); upstream data that cannot be translated raises `UpstreamFormatError` (→ 502, or a
mid-stream error frame). Any other exception from a pair is a bug; the pipeline still answers in the
client's shape, but fuzz tests hold every pair to raising only these two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from iron_tui.core.json_bytes import dumps as _dumps
from iron_tui.core.translate.errors import TranslationError, UpstreamFormatError

__all__ = [
    "DONE_EVENT",
    "ClientApi",
    "Pair",
    "ProviderApi",
    "RequestContext",
    "StreamTranslator",
    "Translated",
    "TranslationError",
    "UpstreamFormatError",
    "sse_data",
    "sse_event",
]

# What agents speak. (Embeddings and legacy completions are native-only passthroughs.)
ClientApi = Literal["openai.chat", "openai.responses", "anthropic.messages", "openai.completions",
                    "openai.embeddings"]
# What a provider speaks (`api` of a configured provider, DESIGN.md §7).
ProviderApi = Literal["openai", "openai-responses", "anthropic"]


# OpenAI Chat Completions streams end with `data: [DONE]`, which is not JSON: the pipeline feeds it to a
# translator as `feed(DONE_EVENT, {})`.
DONE_EVENT = "[DONE]"


@dataclass(slots=True)
class RequestContext:
    """What a pair needs to know beyond the client body. Built by the pipeline, read-only for pairs."""

    model: str  # the model name to send upstream (aliases and `NAME/` prefixes already resolved)
    client_model: str  # the name the client sent (echo it back where the client expects its own name)
    stream: bool
    created: int  # epoch seconds, for `created` / `created_at` fields
    # The output cap to send when the client set none and the target API requires one (Anthropic's
    # `max_tokens`): the model's maximum output, from model data. Budget caps ("fit to budget") are
    # applied by the pipeline AFTER `request`, through the provider dialect's cap field, so pairs only
    # translate the client's own cap. None: the target needs no default.
    max_output_tokens: int | None = None
    # Responses API `previous_response_id`: the stored conversation (input items then output items of
    # the earlier responses, oldest first), resolved by the pipeline; None when not used.
    previous_items: list[dict[str, Any]] | None = None
    # Chat Completions clients: whether the client asked for the usage chunk. Filled by the pipeline from
    # `Translated.include_usage` after `request`, before `stream` is called.
    include_usage: bool = True
    # Per-call ids the pair may need (e.g. a response id it must mint), from the engine's id source.
    new_id: Callable[[str], str] | None = None
    # `Translated.state` of this call, set by the pipeline after `request` and before `response`/`stream`:
    # what a pair learnt from the client body and needs again (e.g. the client's tool names).
    state: Any = None


@dataclass(slots=True)
class Translated:
    """An upstream request built by a pair."""

    body: dict[str, Any]  # the upstream JSON body
    path: str  # upstream path, e.g. "/v1/messages", "/v1/chat/completions", "/v1/responses"
    # Chat Completions clients: whether the client asked for the usage chunk (stream_options.include_usage);
    # other dialects always get usage in their final event.
    include_usage: bool = True
    warnings: list[str] = field(default_factory=list)  # lossy but accepted changes, shown in the detail view
    state: Any = None  # pair-private; handed back to `response`/`stream` as `ctx.state`


class StreamTranslator(Protocol):
    """Upstream SSE events in, client SSE bytes out. One instance per call; never touches a socket."""

    done: bool  # True once the upstream stream reached its normal end (and the client's end was emitted)

    def feed(self, event: str, data: dict[str, Any]) -> list[bytes]:
        """Client SSE frames (complete `event:`/`data:` blocks ending in a blank line) for one upstream
        event. `event` is the SSE event name ("message" when the upstream sent none); `data` its parsed
        JSON object. An upstream `error` event yields [] — the pipeline handles errors."""
        ...

    def finish(self) -> list[bytes]:
        """Frames that close the client's stream when the upstream ended WITHOUT its final event
        (e.g. a usage chunk); [] when nothing honest can be added. Never called after `done`."""
        ...


class Pair(Protocol):
    # Read-only in the protocol, so a pair may declare them as plain class attributes.
    @property
    def client(self) -> str: ...  # a ClientApi

    @property
    def provider(self) -> str: ...  # a ProviderApi

    def request(self, body: dict[str, Any], ctx: RequestContext) -> Translated: ...

    def response(self, body: dict[str, Any], ctx: RequestContext) -> dict[str, Any]: ...

    def stream(self, ctx: RequestContext) -> StreamTranslator: ...


# --- SSE framing, for pairs ------------------------------------------------------------------------


def sse_data(obj: Any) -> bytes:
    """`data: <json>` + blank line (OpenAI Chat Completions framing)."""
    return b"data: " + _dumps(obj) + b"\n\n"


def sse_event(name: str, obj: Any) -> bytes:
    """`event: <name>` + `data: <json>` + blank line (Anthropic Messages and OpenAI Responses framing)."""
    return b"event: " + name.encode() + b"\ndata: " + _dumps(obj) + b"\n\n"
