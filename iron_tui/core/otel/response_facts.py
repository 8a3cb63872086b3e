"""What the provider answered, read from the stored response preview (already key-redacted): the
response model, the response id and the finish reasons, for the span (`spans.py`).

The preview is JSON, or the SSE stream as relayed, of any dialect, so the facts are found by key
with regular expressions, once per span in the exporter process. The model and id are near the
start, where a search is quick (~0.2 µs); a stream's finish reason is in its last events, and
finding every reason of a several-KB stream to keep the last cost ~2 µs: it is searched for from
the end (in the compact `"key":"value"` shape every provider sends; anything else falls back to
the regex, so the result is always the regex's).
"""

from __future__ import annotations

import re

_MODEL = re.compile(r'"model"\s*:\s*"([^"\\]{1,200})"')
_ID = re.compile(r'"id"\s*:\s*"([^"\\]{1,200})"')
_FINISH = re.compile(r'_reason"\s*:\s*"([^"\\]{1,40})"')  # finish_reason, stop_reason (a literal prefix: fast)
_RESPONSES_END = re.compile(r'"type"\s*:\s*"response\.(completed|incomplete|failed)"')
_RESPONSES_STATUS = re.compile(r'"status"\s*:\s*"(completed|incomplete|failed|cancelled|in_progress)"')
_REASON_KEY = '_reason"'


def response_facts(text: str | None, status: int | None, upstream_api: str | None, api: str, provider: str,
                   stream: bool) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(response model, response id, finish reasons) as the provider reported them, read from the
    stored response (JSON, or the SSE stream as relayed); what the preview does not hold is None/()."""
    if not text or status is None or status >= 400:
        return None, None, ()
    m = _MODEL.search(text)
    i = _ID.search(text)
    upstream = upstream_api or ("openai-responses" if api == "openai.responses" else provider)
    if upstream == "openai-responses":
        ends = _RESPONSES_END.findall(text) if stream else []
        first = _RESPONSES_STATUS.search(text)
        reasons: tuple[str, ...] = (ends[-1],) if ends else ((first.group(1),) if first else ())
    elif stream:  # a stream repeats the same choice's reason in several events: the last one
        last = _last_reason(text)
        reasons = (last,) if last else ()
    else:
        reasons = tuple(_FINISH.findall(text))
    return (m.group(1) if m else None), (i.group(1) if i else None), reasons


def _last_reason(text: str) -> str | None:
    """`_FINISH.findall(text)[-1]`, searched from the end: the last compact key, unless it could lie
    inside an earlier match's value (`"stop_reason":"x_reason":"y"`: the value's opening quote
    follows a colon), where only the regex knows."""
    at = text.rfind(_REASON_KEY)
    while at >= 0:
        start = at + len(_REASON_KEY) + 2
        if text.startswith(':"', start - 2):
            end = text.find('"', start)
            quote = text.rfind('"', 0, at)
            if (0 < end - start <= 40 and "\\" not in text[start:end]
                    and (quote <= 0 or not (text[quote - 1] == ":" or text[quote - 1].isspace()))):
                return text[start:end]
            break
        if not text.startswith(":null", start - 2):
            break
        at = text.rfind(_REASON_KEY, 0, at)
    else:
        return None
    found = _FINISH.findall(text)
    return found[-1] if found else None
