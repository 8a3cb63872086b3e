"""Where spans go and how: the standard OTEL_* environment variables, then iron-tui's settings.

Environment variables win over the config file (they are what every OpenTelemetry SDK reads, so a
team sets them once for all its tools). Honoured: OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER,
OTEL_EXPORTER_OTLP[_TRACES]_{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION,PROTOCOL,CERTIFICATE},
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_* and
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT. A bad value is reported and its default used:
these variables are shared with other tools, so they are not worth refusing to start over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from iron_tui.core.otel.traceparent import SpanContext

if TYPE_CHECKING:
    from iron_tui.config import Settings

_TRUE = ("true", "1", "yes", "on")

# The standard variables read here, and what they do (docs/configuration.md is generated from this).
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector base URL; spans go to URL/v1/traces (beats `otel_endpoint`)"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "the full traces URL, used as is (beats the one above)"),
    ("OTEL_EXPORTER_OTLP[_TRACES]_HEADERS", "`key=value,…` headers for the collector (e.g. its API key)"),
    ("OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT", "export timeout in ms (default 10000)"),
    ("OTEL_EXPORTER_OTLP[_TRACES]_COMPRESSION", "`gzip` or `none` (default)"),
    ("OTEL_EXPORTER_OTLP[_TRACES]_CERTIFICATE", "CA bundle for an https collector"),
    ("OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL", "only `http/protobuf` (the default) is supported"),
    ("OTEL_SERVICE_NAME", "`service.name` (beats `service.name` in the resource attributes, then `otel_service_name`)"),
    ("OTEL_RESOURCE_ATTRIBUTES", "`key=value,…` added to the resource of every span"),
    ("OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG", "`parentbased_always_on` (default), `always_on`, "
     "`always_off`, `traceidratio`, `parentbased_always_off`, `parentbased_traceidratio`"),
    ("OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY",
     "span queue bound (2048; spans beyond it are dropped and counted), batch size (512), ms between exports (5000)"),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "`true`: like `otel_capture_content`"),
    ("OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER", "`true` / `none`: no tracing"),
)
_SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off",
             "parentbased_traceidratio")


@dataclass(frozen=True, slots=True)
class Sampler:
    """The standard samplers (OTEL_TRACES_SAMPLER); a trace-id ratio keeps a trace when the low
    64 bits of its id fall under the ratio, so every service keeps the same traces."""

    name: str = "parentbased_always_on"
    ratio: float = 1.0

    def sampled(self, trace_id: bytes, parent: SpanContext | None) -> bool:
        if parent is not None and self.name.startswith("parentbased_"):
            return parent.sampled
        root = self.name.removeprefix("parentbased_")
        if root == "always_on":
            return True
        if root == "always_off":
            return False
        return int.from_bytes(trace_id[8:], "big") < self.ratio * (1 << 64)


@dataclass(frozen=True, slots=True)
class OtlpConfig:
    endpoint: str  # the full traces URL, e.g. http://collector:4318/v1/traces
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    gzip: bool = False
    certificate: str | None = None  # CA bundle for an https collector
    service_name: str = "iron-tui"
    resource: dict[str, str] = field(default_factory=dict)  # OTEL_RESOURCE_ATTRIBUTES
    sampler: Sampler = field(default_factory=Sampler)
    capture_content: bool = False
    max_queue: int = 2048
    max_batch: int = 512
    schedule_delay_s: float = 5.0

    def __repr__(self) -> str:  # headers often carry a collector's API key: never print them
        return f"OtlpConfig(endpoint={self.endpoint!r}, service_name={self.service_name!r}, headers=<{len(self.headers)}>)"


def resolve_otlp(settings: Settings, environ: Mapping[str, str]) -> tuple[OtlpConfig | None, list[str]]:
    """The export configuration (None: tracing off) and the problems found, for the user."""
    problems: list[str] = []
    env = {k: v.strip() for k, v in environ.items() if k.startswith("OTEL_")}

    def pick(name: str) -> str | None:
        """OTEL_EXPORTER_OTLP_TRACES_<name>, else OTEL_EXPORTER_OTLP_<name>."""
        return env.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or env.get(f"OTEL_EXPORTER_OTLP_{name}") or None

    if env.get("OTEL_SDK_DISABLED", "").lower() in _TRUE:
        return None, problems
    exporters = env.get("OTEL_TRACES_EXPORTER")
    if exporters and "otlp" not in [e.strip().lower() for e in exporters.split(",")]:
        return None, problems
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or None
    if endpoint is None:
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or settings.otel_endpoint
        if not base:
            return None, problems
        endpoint = base.rstrip("/") + "/v1/traces"
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, [f"tracing off: the OTLP endpoint {endpoint!r} is not an http:// or https:// URL"]
    protocol = pick("PROTOCOL") or "http/protobuf"
    if protocol != "http/protobuf":
        return None, [f"tracing off: OTLP protocol {protocol!r} is not supported; iron-tui exports "
                      "http/protobuf (use the collector's HTTP port, usually 4318)"]

    def number(name: str, default: float, env_name: str | None = None) -> float:
        raw = env.get(env_name) if env_name else pick(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value <= 0:
            problems.append(f"{env_name or 'OTEL_EXPORTER_OTLP_' + name}={raw!r} is not a positive number; "
                            f"using {default:g}")
            return default
        return value

    resource = _key_values(env.get("OTEL_RESOURCE_ATTRIBUTES", ""), "OTEL_RESOURCE_ATTRIBUTES", problems)
    service = env.get("OTEL_SERVICE_NAME") or resource.pop("service.name", None) or settings.otel_service_name
    resource.pop("service.name", None)
    compression = (pick("COMPRESSION") or "none").lower()
    if compression not in ("gzip", "none"):
        problems.append(f"OTLP compression {compression!r} is not supported (gzip or none); sending uncompressed")
    cfg = OtlpConfig(
        endpoint=endpoint,
        headers=_key_values(pick("HEADERS") or "", "OTEL_EXPORTER_OTLP_HEADERS", problems),
        timeout_s=number("TIMEOUT", 10_000.0) / 1000.0,
        gzip=compression == "gzip",
        certificate=pick("CERTIFICATE"),
        service_name=service,
        resource=resource,
        sampler=_sampler(env, problems),
        capture_content=settings.otel_capture_content
        or env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").lower() in _TRUE,
        max_queue=int(number("", 2048, "OTEL_BSP_MAX_QUEUE_SIZE")),
        max_batch=int(number("", 512, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")),
        schedule_delay_s=number("", 5000.0, "OTEL_BSP_SCHEDULE_DELAY") / 1000.0,
    )
    return cfg, problems


def _key_values(text: str, name: str, problems: list[str]) -> dict[str, str]:
    """`k1=v1,k2=v2` with percent-encoded values (W3C Baggage style, as the OTel spec says)."""
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            # Only the key: the value may be a secret (an API key header), so it is not echoed.
            problems.append(f"{name}: ignoring an entry without key=value ({key.strip()[:40]!r})")
            continue
        out[unquote(key.strip())] = unquote(value.strip())
    return out


def _sampler(env: Mapping[str, str], problems: list[str]) -> Sampler:
    name = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").lower()
    if name not in _SAMPLERS:
        problems.append(f"OTEL_TRACES_SAMPLER={name!r} is not supported ({', '.join(_SAMPLERS)}); "
                        "using parentbased_always_on")
        return Sampler()
    ratio = 1.0
    if name.endswith("traceidratio"):
        raw = env.get("OTEL_TRACES_SAMPLER_ARG", "1.0")
        try:
            ratio = float(raw)
            if not 0.0 <= ratio <= 1.0:
                raise ValueError
        except ValueError:
            problems.append(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not a ratio between 0 and 1; using 1.0")
            ratio = 1.0
    return Sampler(name, ratio)
