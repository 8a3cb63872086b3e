"""Simulated OpenAI and Anthropic upstream APIs on one local aiohttp server.

Used by the tests, the benchmark and `iron-tui demo`. The official `openai` and `anthropic` SDKs parse
every response and stream event. Routes (both providers share one port; paths are disjoint):

    OpenAI     POST /v1/chat/completions  /v1/completions  /v1/embeddings  /v1/responses
               GET  /v1/models[/{model}]            auth: `Authorization: Bearer <openai key>`
    Anthropic  POST /v1/messages  /v1/messages/count_tokens
               GET  /v1/models[/{model}]            auth: `x-api-key` (+ `anthropic-version` on messages)
    GET /v1/models answers in Anthropic's shape when the request has `x-api-key` or `anthropic-version`.

Replies are deterministic: "Simulated reply to: <first 8 words of the last user text> ..." padded with
filler to `SimSettings.words` words; one word is one output token. `max_tokens` cuts the reply (finish
`length` / `max_tokens`), stop sequences cut it before the sequence (`stop` / `stop_sequence`). Input
tokens are ceil(chars/4) over all message text plus tool name, description and JSON schema (Anthropic
tools with `defer_loading: true` are neither counted nor called: the model has not loaded them). With
tools and a final user turn the reply is tool calls (arguments follow the schema's property names);
after tool results the reply is text about the result of the last call made ("Simulated reply to tool
result: ...", whatever order the results came in). Anthropic reports prompt-cache tokens
for `cache_control` breakpoints (written on first sight of a prefix, read afterwards); OpenAI reports
`prompt_tokens_details.cached_tokens` when a `prompt_cache_key` request repeats its prefix.

Directives, written anywhere in the text of the last user message (so they survive the proxy and
translation); they are removed from the echoed text:

    [[sim:error=429]]        fail with that status in the provider's error shape (429 adds `retry-after: 1`;
                             529 is Anthropic's overloaded_error and a 503 on OpenAI routes)
    [[sim:midstream_error]]  stream a few chunks, then an error (Anthropic `event: error` overloaded_error;
                             OpenAI `data: {"error": {...}}`) and end; non-stream requests get 529/503
    [[sim:prestream_error]]  HTTP 200, then an error event before any content (Anthropic: before message_start)
    [[sim:tools=2]]          N parallel tool calls (Anthropic adds a short text block first when N >= 2)
    [[sim:call=Read(/a/b)]]  call the tool named Read (chat and messages), with only its required
                             arguments and /a/b in the first required string one; repeat the directive
                             for parallel calls; a tool the request does not offer is not called
    [[sim:searches=3]]       a request with a web search tool (Responses `web_search*`, Messages
                             `web_search_*`) runs N searches ahead of the answer (1 without the directive,
                             0 for none): `web_search_call` items, or `server_tool_use` +
                             `web_search_tool_result` blocks counted in `usage.server_tool_use`
    [[sim:latency=200]]      wait 200 ms before the response / first byte
    [[sim:words=500]]        reply length in words (= output tokens)
    [[sim:hang]]             never answer (timeout tests); ends when the client goes away
    [[sim:stall]]            stream headers and a few chunks, then never finish
    [[sim:disconnect]]       close the connection without any response
    [[sim:slow_stream=50]]   milliseconds between stream chunks
    [[sim:no_usage]]         leave usage out of the response (and the OpenAI usage chunk)

`sim.faults.push(status=500, times=3, provider=None, body=None, retry_after=None, kind="status")` makes the
next matching requests fail without touching the prompt (kinds: status, disconnect, hang, stall,
midstream_error, prestream_error). Faults are applied after authentication, so a bad key is still a 401.

Every request is appended to `sim.requests` (bounded). When a client goes away before its response is
finished the record gets `cancelled=True` and `await sim.wait_cancelled()` returns it.
"""

from __future__ import annotations

from types import TracebackType

from aiohttp import web

from iron_tui.sim.anthropic_sim import AnthropicSim
from iron_tui.sim.base import SimSettings, SimState
from iron_tui.sim.openai_sim import OpenAISim

__all__ = ["ProviderSim"]

_CLIENT_MAX_SIZE = 64 * 1024 * 1024


class ProviderSim(SimState):
    """Both simulated providers on one aiohttp server. Use as `async with ProviderSim() as sim:`."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        super().__init__(settings)
        self.openai = OpenAISim(self)
        self.anthropic = AnthropicSim(self)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    def make_app(self) -> web.Application:
        """The aiohttp application; embed it or let `start()` serve it."""
        app = web.Application(client_max_size=_CLIENT_MAX_SIZE)
        oa, an = self.openai, self.anthropic
        add = app.router.add_route
        add("POST", "/v1/chat/completions", oa.chat)
        add("POST", "/v1/completions", oa.completions)
        add("POST", "/v1/embeddings", oa.embeddings)
        add("POST", "/v1/responses", oa.responses)
        add("POST", "/v1/messages", an.messages)
        add("POST", "/v1/messages/count_tokens", an.count_tokens)
        add("GET", "/v1/models", self._models)
        add("GET", "/v1/models/{model}", self._models)
        add("GET", "/health", self._health)
        add("*", "/{tail:.*}", self._not_found)
        return app

    @staticmethod
    def _is_anthropic(request: web.Request) -> bool:
        headers = request.headers
        return "x-api-key" in headers or "anthropic-version" in headers

    async def _models(self, request: web.Request) -> web.StreamResponse:
        if self._is_anthropic(request):
            return await self.anthropic.models(request)
        return await self.openai.models(request)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        if self._is_anthropic(request):
            return await self.anthropic.not_found(request)
        return await self.openai.not_found(request)

    @staticmethod
    async def _health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    # ---- server lifecycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError("ProviderSim is already running")
        self._stopping = False
        # handler_cancellation: a client that hangs up cancels its handler at once, which is how the
        # sim notices abandoned requests (it also polls the transport when embedded without it).
        runner = web.AppRunner(
            self.make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        bound = runner.addresses[0]
        self._runner = runner
        self._url = f"http://{host}:{bound[1]}"

    async def stop(self) -> None:
        """Stop serving; hanging and stalled handlers end (recorded as cancelled). Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping = True
        await runner.cleanup()
        self._url = None

    async def __aenter__(self) -> ProviderSim:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (no `/v1`; the SDKs and the proxy append the API path)."""
        if self._url is None:
            raise RuntimeError("ProviderSim is not running; call start() first")
        return self._url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def openai_base_url(self) -> str:
        return self.url

    @property
    def anthropic_base_url(self) -> str:
        return self.url
