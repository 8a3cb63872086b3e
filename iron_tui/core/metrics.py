"""Per-call Prometheus series (DESIGN.md §8), fed by the engine's `request_finished` hook.

Names follow the OpenTelemetry GenAI semantic conventions where one exists, converted the way the
OpenTelemetry → Prometheus mapping does (dots → underscores, unit `s` → `_seconds`, `{token}` dropped):
`gen_ai_client_token_usage`, `gen_ai_client_operation_duration_seconds` and (streams only, as the
convention says) `gen_ai_client_operation_time_to_first_chunk_seconds`, with the convention's bucket
boundaries and `gen_ai_operation_name`, `gen_ai_provider_name`, `gen_ai_request_model`,
`gen_ai_token_type` and `error_type` labels. iron-tui's own series are `iron_*`.

Cost per call: one dict lookup, a bisect per histogram and a few integer adds, on the engine's event
loop thread — the only thread that touches these objects (scrapes run on it too), so no lock.

Cardinality is bounded: a model gets its own label value only once a call to it succeeded (names
clients invent never reach the provider successfully) and while fewer than `max_models` have one;
every other model is "other". Providers and error types are capped the same way.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator

from iron_tui.core.events import MICROS_PER_USD, RequestRecord

TOKEN_BUCKETS: tuple[float, ...] = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                                    16777216, 67108864)
DURATION_BUCKETS: tuple[float, ...] = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24,
                                       20.48, 40.96, 81.92)
OTHER = "other"
MAX_LABEL_CHARS = 100

# gen_ai.operation.name for each client API (the Responses API is a chat operation in the convention).
OPERATIONS = {
    "openai.chat": "chat",
    "anthropic.messages": "chat",
    "openai.responses": "chat",
    "openai.completions": "text_completion",
    "openai.embeddings": "embeddings",
}
# gen_ai.provider.name's well-known values, for provider names iron-tui spells differently.
PROVIDER_NAMES = {"mistral": "mistral_ai", "xai": "x_ai", "gemini": "gcp.gemini"}

# Error codes the upstream caused (the rest are iron-tui's own refusals or the client going away).
UPSTREAM_ERROR_CODES = frozenset({"upstream_timeout", "upstream_unreachable", "upstream_empty_stream",
                                  "stream_error", "stream_incomplete"})
BUDGET_REFUSALS = frozenset({"budget_exceeded", "insufficient_budget"})
_CODE = re.compile(r"[a-z0-9_.]{1,40}")


def operation_name(api: str) -> str:
    return OPERATIONS.get(api, api.rsplit(".", 1)[-1] if _CODE.fullmatch(api) else OTHER)


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


def error_type(rec: RequestRecord) -> str | None:
    """`error.type` of a finished call: None when it succeeded; the upstream's HTTP status ("429",
    "500") when it answered with an error; else iron-tui's error code ("upstream_timeout", ...)."""
    if rec.state == "ok":
        return None
    code = (rec.error_code or (str(rec.status) if rec.status else "error")).lower()
    return code if _CODE.fullmatch(code) else "error"


class Histogram:
    """Non-cumulative bucket counts (cumulated at exposition) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # `le` buckets: value <= bound
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)


class _Folder:
    """Admits up to `limit` distinct label values; the rest become "other"."""

    __slots__ = ("admitted", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.admitted: set[str] = set()

    def label(self, value: str, *, admit: bool = True) -> str:
        if value in self.admitted:
            return value
        if admit and len(self.admitted) < self.limit and value and len(value) <= MAX_LABEL_CHARS:
            self.admitted.add(value)
            return value
        return OTHER


class CallSeries:
    """Everything recorded for one (operation, provider, model) label set."""

    __slots__ = ("cache_read", "cache_write", "cost_micros", "duration", "errors", "input_tokens", "labels",
                 "output_tokens", "ttfc", "unpriced")

    def __init__(self, labels: tuple[str, str, str]) -> None:
        self.labels = labels  # (gen_ai_operation_name, gen_ai_provider_name, gen_ai_request_model)
        self.duration = Histogram(DURATION_BUCKETS)  # successful calls
        self.errors: dict[str, Histogram] = {}  # error_type -> duration of the failed calls
        self.ttfc = Histogram(DURATION_BUCKETS)
        self.input_tokens = Histogram(TOKEN_BUCKETS)
        self.output_tokens = Histogram(TOKEN_BUCKETS)
        self.cache_read = 0
        self.cache_write = 0
        self.cost_micros = 0
        self.unpriced = 0


class Metrics:
    """The per-call series. `observe(rec)` once per finished call, its tries included when it had several."""

    def __init__(self, max_models: int = 50, max_providers: int = 16, max_error_types: int = 32) -> None:
        self._models = _Folder(max_models)
        self._providers = _Folder(max_providers)
        self._error_types = _Folder(max_error_types)
        # (api, provider, model) as recorded -> its series; only admitted names are keys, so the
        # dict stays as bounded as the labels.
        self._by_record: dict[tuple[str, str, str], CallSeries] = {}
        self._by_labels: dict[tuple[str, str, str], CallSeries] = {}
        self.upstream_errors: dict[tuple[str, str], int] = {}  # (provider, error_type) -> count
        self.refused: dict[str, int] = {}  # budget refusal code -> count
        self.capped = 0
        self.retries: dict[tuple[str, str], int] = {}  # (provider, reason) -> count

    def observe(self, rec: RequestRecord) -> None:
        key = (rec.api, rec.provider, rec.model)
        s = self._by_record.get(key)
        if s is None:
            s = self._series_for(rec, key)
        err = error_type(rec)
        latency = rec.latency_ms
        if err is None:
            if latency is not None:
                s.duration.observe(latency / 1000.0)
            if rec.stream and rec.ttft_ms is not None:
                s.ttfc.observe(rec.ttft_ms / 1000.0)
        else:
            self._failed(rec, s, err, latency)
        if rec.input_tokens or rec.output_tokens:
            if not rec.cost_estimated:  # the convention: report tokens only when the provider counted them
                s.input_tokens.observe(rec.input_tokens)
                s.output_tokens.observe(rec.output_tokens)
            s.cache_read += rec.cache_read_tokens
            s.cache_write += rec.cache_write_tokens
        if rec.cost_micros:
            s.cost_micros += rec.cost_micros
        elif not rec.priced:
            s.unpriced += 1
        if rec.capped_max_tokens is not None:
            self.capped += 1
        if rec.attempts:
            self._tries(rec)

    def _tries(self, rec: RequestRecord) -> None:
        """A call with more than one try (retries, fallbacks): each failed try is an upstream error, and
        the reason for the try after it."""
        for a in rec.attempts:
            # The last try's error_type is None when its answer was relayed, an error status included.
            code = a.error_type or (str(a.status) if a.status is not None and a.status >= 400 else None)
            if code is None or code == "skipped":
                continue
            provider = self._providers.label(provider_name(a.provider))
            err = self._error_types.label(code.lower() if _CODE.fullmatch(code) else "error")
            self.upstream_errors[(provider, err)] = self.upstream_errors.get((provider, err), 0) + 1
        for a in rec.attempts[:-1]:
            self.retry(a.provider, a.error_type or "error")

    def _failed(self, rec: RequestRecord, s: CallSeries, err: str, latency: float | None) -> None:
        err = self._error_types.label(err)
        h = s.errors.get(err)
        if h is None:
            h = s.errors[err] = Histogram(DURATION_BUCKETS)
        if latency is not None:
            h.observe(latency / 1000.0)
        code = rec.error_code or ""
        if code in BUDGET_REFUSALS:
            self.refused[code] = self.refused.get(code, 0) + 1
        elif rec.attempts:
            pass  # each failed try is counted by _tries
        elif code.isdigit() or code in UPSTREAM_ERROR_CODES:
            k = (s.labels[1], err)
            self.upstream_errors[k] = self.upstream_errors.get(k, 0) + 1

    def _series_for(self, rec: RequestRecord, key: tuple[str, str, str]) -> CallSeries:
        provider = self._providers.label(provider_name(rec.provider))
        model = self._models.label(rec.model, admit=rec.state == "ok")
        labels = (operation_name(rec.api), provider, model)
        s = self._by_labels.get(labels)
        if s is None:
            s = self._by_labels[labels] = CallSeries(labels)
        if model != OTHER and provider != OTHER:
            self._by_record[key] = s
        return s

    def retry(self, provider: str, reason: str) -> None:
        """Count one retried (or fallen back from) upstream try, by why."""
        k = (self._providers.label(provider_name(provider)), reason if _CODE.fullmatch(reason) else OTHER)
        self.retries[k] = self.retries.get(k, 0) + 1

    def series(self) -> Iterable[CallSeries]:
        return self._by_labels.values()


# --- exposition ------------------------------------------------------------------------------------


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(v: float) -> str:
    """Go-style float text, as Prometheus and OpenMetrics expect ("1.0", "0.01", "+Inf")."""
    if v == float("inf"):
        return "+Inf"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


def labels_text(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


class Exposition:
    """Builds Prometheus text (0.0.4) or OpenMetrics (1.0.0) text; the two differ only in counter
    family names, `# UNIT` lines and the final `# EOF`."""

    def __init__(self, openmetrics: bool) -> None:
        self.openmetrics = openmetrics
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str, unit: str | None = None) -> None:
        shown = name if self.openmetrics or kind != "counter" else name + "_total"
        self.lines.append(f"# HELP {shown} {help_}")
        self.lines.append(f"# TYPE {shown} {kind}")
        if unit and self.openmetrics:
            self.lines.append(f"# UNIT {shown} {unit}")

    def sample(self, name: str, labels: Iterable[tuple[str, str]], value: float) -> None:
        self.lines.append(f"{name}{labels_text(labels)} {number(value)}")

    def histogram(self, name: str, labels: tuple[tuple[str, str], ...], h: Histogram) -> None:
        cumulative = 0
        for bound, n in zip((*h.bounds, float("inf")), h.counts, strict=True):
            cumulative += n
            self.sample(name + "_bucket", (*labels, ("le", number(float(bound)))), cumulative)
        self.sample(name + "_count", labels, cumulative)
        self.sample(name + "_sum", labels, h.total)

    def text(self) -> str:
        return "\n".join(self._finished()) + "\n"

    def _finished(self) -> Iterator[str]:
        yield from self.lines
        if self.openmetrics:
            yield "# EOF"


def write_calls(out: Exposition, m: Metrics) -> None:
    """The per-call families, from `m`."""
    series = list(m.series())

    def call_labels(s: CallSeries) -> tuple[tuple[str, str], ...]:
        op, provider, model = s.labels
        return (("gen_ai_operation_name", op), ("gen_ai_provider_name", provider), ("gen_ai_request_model", model))

    out.family("gen_ai_client_token_usage", "histogram",
               "Number of input and output tokens used per call, as the provider reported them.")
    for s in series:
        for kind, h in (("input", s.input_tokens), ("output", s.output_tokens)):
            if h.count:
                out.histogram("gen_ai_client_token_usage", (*call_labels(s), ("gen_ai_token_type", kind)), h)
    out.family("gen_ai_client_operation_duration_seconds", "histogram",
               "GenAI operation duration: from the call's arrival to its last byte.", "seconds")
    for s in series:
        if s.duration.count:
            out.histogram("gen_ai_client_operation_duration_seconds", call_labels(s), s.duration)
        for err, h in sorted(s.errors.items()):
            out.histogram("gen_ai_client_operation_duration_seconds", (*call_labels(s), ("error_type", err)), h)
    out.family("gen_ai_client_operation_time_to_first_chunk_seconds", "histogram",
               "Streaming calls: time from the call's arrival to the first chunk sent to the client.", "seconds")
    for s in series:
        if s.ttfc.count:
            out.histogram("gen_ai_client_operation_time_to_first_chunk_seconds", call_labels(s), s.ttfc)
    for name, help_, count in (
        ("iron_cost_usd", "Spend in USD charged for calls (estimates included).",
         lambda s: s.cost_micros / MICROS_PER_USD),
        ("iron_unpriced_calls", "Calls to models with no known price (charged $0).", lambda s: s.unpriced),
    ):
        out.family(name, "counter", help_)
        for s in series:
            if count(s):
                out.sample(name + "_total", call_labels(s), count(s))
    out.family("iron_cache_tokens", "counter", "Prompt-cache tokens reported by the provider.")
    for s in series:
        for kind, n in (("cache_read", s.cache_read), ("cache_write", s.cache_write)):
            if n:
                out.sample("iron_cache_tokens_total", (*call_labels(s), ("gen_ai_token_type", kind)), n)
    out.family("iron_upstream_errors", "counter",
               "Failed tries the provider caused, by error type (HTTP status or iron-tui's error code).")
    for (provider, err), n in sorted(m.upstream_errors.items()):
        out.sample("iron_upstream_errors_total", (("gen_ai_provider_name", provider), ("error_type", err)), n)
    out.family("iron_retries", "counter", "Tries retried or fallen back from, by provider and the failed try's error type.")
    for (provider, reason), n in sorted(m.retries.items()):
        out.sample("iron_retries_total", (("gen_ai_provider_name", provider), ("reason", reason)), n)
    out.family("iron_budget_refused_calls", "counter", "Calls refused with 402 because the budget could not pay.")
    for code in sorted(BUDGET_REFUSALS):
        out.sample("iron_budget_refused_calls_total", (("reason", code),), m.refused.get(code, 0))
    out.family("iron_budget_capped_calls", "counter",
               "Calls whose output cap iron-tui lowered to fit the budget (x-iron-max-tokens).")
    out.sample("iron_budget_capped_calls_total", (), m.capped)
