"""What iron-tui hands its span exporter process: finished calls as compact tuples, pickled, in
length-prefixed frames over a pipe (~0.5 µs per call to pack). The exporter encodes spans from the
rows as they come, without making records of them again. The first frame is the export configuration.

Pickle rather than `marshal`: for these rows its C pickler takes half marshal's time (~0.3 against
~0.6 µs a call), and that time is iron-tui's. The rows hold only str, int, float, bool, None, tuples
and lists; the exporter unpickles with no globals at all, so a frame can name no class or function
(nothing to call), whoever wrote it.

Only what a span needs crosses: the record's fields, the budget at its finish, the response preview
(cut to its head and tail unless content capture needs all of it: the response facts live there),
the request preview only for content capture, and the attempts.
"""

from __future__ import annotations

import io
import pickle
import struct
from dataclasses import asdict
from typing import IO, Any

from iron_tui.core.events import Attempt, RequestRecord
from iron_tui.core.otel.config import OtlpConfig, Sampler

QueuedCall = tuple[RequestRecord, int, int | None]  # the record, budget spent and limit at its finish
# One call as it crosses: a flat tuple of the record's fields in `call_rows`' order, then the attempts
# as tuples, budget spent and limit. The exporter encodes spans from it directly (`spans.py`).
Row = tuple[Any, ...]

_LENGTH = struct.Struct(">I")
_PROTOCOL = 5
MAX_FRAME = 64 * 1024 * 1024
_PREVIEW_HEAD = 4096  # response model and id are at the start of a response, finish reasons at the end


def call_rows(calls: list[QueuedCall], content: bool) -> list[Row]:
    """The calls as rows (what `pack_calls` pickles)."""
    rows = []
    for rec, spent, limit in calls:
        up = rec.upstream_response
        if up is not None and not content and len(up) > 2 * _PREVIEW_HEAD:
            up = up[:_PREVIEW_HEAD] + up[-_PREVIEW_HEAD:]
        rows.append((
            rec.id, rec.started_at, rec.api, rec.model, rec.provider, rec.upstream_api, rec.stream,
            rec.translated, rec.agent_id, rec.state, rec.status, rec.latency_ms, rec.ttft_ms, rec.input_tokens,
            rec.output_tokens, rec.cache_read_tokens, rec.cache_write_tokens, rec.cost_micros, rec.priced,
            rec.cost_estimated, rec.error, rec.error_code, rec.traceparent, rec.capped_max_tokens, rec.client_model, up,
            rec.request_body if content else None,
            # Most calls have no attempts: skip building an empty tuple from a generator (~0.2 µs).
            tuple((a.started_at, a.duration_ms, a.provider, a.model, a.status, a.error_type, a.error, a.waited_ms)
                  for a in rec.attempts) if rec.attempts else (),
            spent, limit,
        ))
    return rows


def pack_calls(calls: list[QueuedCall], content: bool) -> bytes:
    return pickle.dumps(call_rows(calls, content), _PROTOCOL)


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a frame may hold plain values only, not {module}.{name}")


def _loads(payload: bytes) -> Any:
    try:
        return _PlainUnpickler(io.BytesIO(payload)).load()
    except (pickle.UnpicklingError, EOFError) as exc:
        raise ValueError(f"not a frame of plain values: {exc}") from None


def unpack_rows(payload: bytes) -> list[Row]:
    rows = _loads(payload)
    if not isinstance(rows, list):
        raise ValueError("a frame of calls is not a list")
    return rows


def record_from_row(row: Row) -> RequestRecord:
    """The row as a record again, for the helpers that read one (not per span: ~2 µs)."""
    (rid, started_at, api, model, provider, upstream_api, stream, translated, agent_id, state, status,
     latency_ms, ttft_ms, input_tokens, output_tokens, cache_read, cache_write, cost, priced, estimated,
     error, error_code, traceparent, capped, client_model, upstream_response, request_body, attempts, _spent,
     _limit) = row
    rec = RequestRecord(id=rid, started_at=started_at, method="POST", path="", api=api, model=model,
                        provider=provider, stream=stream, translated=translated, agent_id=agent_id)
    rec.upstream_api, rec.state, rec.status, rec.latency_ms, rec.ttft_ms = upstream_api, state, status, \
        latency_ms, ttft_ms
    rec.input_tokens, rec.output_tokens = input_tokens, output_tokens
    rec.cache_read_tokens, rec.cache_write_tokens = cache_read, cache_write
    rec.cost_micros, rec.priced, rec.cost_estimated = cost, priced, estimated
    rec.error, rec.error_code, rec.traceparent, rec.capped_max_tokens = error, error_code, traceparent, capped
    rec.client_model = client_model
    rec.upstream_response, rec.request_body = upstream_response, request_body
    rec.attempts = tuple(Attempt(*a) for a in attempts)
    return rec


def pack_config(cfg: OtlpConfig, instance_id: str) -> bytes:
    fields = asdict(cfg)
    fields["sampler"] = (cfg.sampler.name, cfg.sampler.ratio)
    return pickle.dumps({"config": fields, "instance_id": instance_id}, _PROTOCOL)


def unpack_config(payload: bytes) -> tuple[OtlpConfig, str]:
    data: dict[str, Any] = _loads(payload)
    fields = dict(data["config"])
    fields["sampler"] = Sampler(*fields["sampler"])
    return OtlpConfig(**fields), str(data["instance_id"])


def write_frame(out: IO[bytes], payload: bytes) -> None:
    out.write(_LENGTH.pack(len(payload)))
    out.write(payload)  # not `head + payload`: a frame is ~400 KB, copied once more for nothing
    out.flush()


def read_frame(src: IO[bytes]) -> bytes | None:
    """The next frame, or None at the end of the stream (or a frame that cannot be one)."""
    head = src.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    if size > MAX_FRAME:
        return None
    payload = src.read(size)
    return payload if len(payload) == size else None
