"""Token bounds for budget admission, without a tokenizer (nothing is downloaded).

How the input bound is computed
-------------------------------
Every tokenizer the providers use is byte-level BPE: each token covers at least one byte of UTF-8
text, so a text of N bytes is at most N tokens. `input_token_bound` walks the request body once and
adds up:

* at least the UTF-8 length of the body's own JSON text (`json.dumps(body, ensure_ascii=False)`):
  every string with its quotes and escapes, every key, number and bracket — computed while walking. Counting the whole body rather than a list of "text fields" means a new
  text-bearing parameter is never missed, and parts the provider renders as JSON (tool schemas, tool
  call arguments) are covered punctuation included; the few non-billed fields (model, temperature...)
  cost a handful of bytes;
* `PER_REQUEST_TOKENS` (reply priming) + `PER_MESSAGE_TOKENS` per message (role/separator tokens;
  OpenAI documents 3-4 per message);
* tool overheads: the tool-use system prompt providers add (Anthropic documents 313-346 tokens for
  Claude 4-era models, 530 for Claude 3 Opus; OpenAI renders function definitions with a small
  header), and `HOSTED_TOOL_TOKENS` per hosted/server tool (web search, computer use, text editor...);
* binary payloads are NOT counted by size (a base64 image would count a million "tokens"); each one
  counts a fixed bound instead:
  - image, Anthropic (also Claude models reached through OpenAI chat): `ANTHROPIC_IMAGE_TOKENS` = 5,000.
    Anthropic downsizes images to about 1.15 MP, i.e. ~1,600 tokens (w×h/750); the margin covers
    higher-resolution image modes of newer models.
  - image, OpenAI: `OPENAI_IMAGE_TOKENS` = 6,000. gpt-4o high detail is at most 85 + 6 tiles × 170 =
    1,105; patch-based models (gpt-4.1-mini/nano, o4-mini) at most 1,536 patches × 2.46 = 3,779.
    gpt-4o-mini bills images at 2,833 + 5,667 per tile, so `GPT_4O_MINI_IMAGE_TOKENS` = 37,000
    (6 tiles = 36,835). `detail: low` is not trusted to lower the bound.
  - audio (`input_audio`): one token per 64 base64 characters (≥ 1,333 base64 chars per second even
    at 8 kbit/s, against ~10 audio tokens per second).
  - PDF/file data: its base64 length + `DOCUMENT_PAGE_TOKENS` (a heuristic, not a strict bound: PDF
    text can be compressed below one byte per token); a file or document given by URL or file id,
    and server-side conversation state (`previous_response_id`, `conversation`), count
    `UNKNOWN_CONTENT_TOKENS` = 100,000 each. These are the cases a body cannot bound.

What is NOT bounded: content a hosted tool pulls in during the call (web/file search results, MCP
tool lists) beyond the per-tool allowance. The ledger then charges the actual cost even if it exceeds
the reservation (see budget.py).

How conservative it is — measured by tests/test_estimate.py::test_report_conservativeness on
generated English chat bodies, against a "real-ish" token count: GPT-style pre-tokens (a word with
its leading space, digit runs of ≤ 3, punctuation runs), which BPE never merges across and which for
common English words are single tokens, plus OpenAI's documented 4 per message and 3 priming:

| body                                          | bound / tokens, median | max  |
|-----------------------------------------------|------------------------|------|
| short chat (system + one 8-20 word question)  | 7.2×                   | 8.2× |
| typical chat (5-20 messages of 20-120 words)  | 4.9×                   | 5.2× |
| one long document (3,000 words)               | 4.6×                   | 4.7× |
| typical chat + 4 function tools               | 4.8×                   | 5.0× |

i.e. about bytes-per-token of English (~4.5) plus the fixed overheads, which dominate short calls.
Images and files are dominated by their fixed constants. The property tests check the bound is never
below a pessimistic simulation (one token per byte of the body's JSON + documented overheads +
published image maxima) for generated OpenAI chat, Anthropic, completions, embeddings and responses
bodies, including arbitrary Unicode, control characters, tool calls and images.

The bound is a reservation, not a charge: every call settles at its real cost from the provider's
usage. A loose bound only matters close to the limit, where a call whose worst case does not fit is
refused with an "insufficient budget" 402.

Speed: one recursive walk; strings go through json's C escaper, nothing is serialised whole. It costs
about one `json.dumps` + `json.loads` of the body: a 43 KB, 50-message chat took 0.38 ms on a busy
2-core machine (a round trip of the same body: 0.28 ms). Base64 payloads are skipped, not scanned.
"""

from __future__ import annotations

import json.encoder
import math
import re
from typing import Any

from iron_tui.core.translate.errors import TranslationError

_encode_basestring = json.encoder.encode_basestring  # the C implementation when available

APIS = frozenset(
    {"openai.chat", "anthropic.messages", "openai.completions", "openai.embeddings", "openai.responses"}
)

PER_REQUEST_TOKENS = 16
PER_MESSAGE_TOKENS = 8
ANTHROPIC_IMAGE_TOKENS = 5_000
OPENAI_IMAGE_TOKENS = 6_000
GPT_4O_MINI_IMAGE_TOKENS = 37_000
ANTHROPIC_TOOL_PROMPT_TOKENS = 600  # documented 313-346 (Claude 4-era), 530 (Claude 3 Opus)
OPENAI_TOOLS_HEADER_TOKENS = 100
PER_TOOL_TOKENS = 32
HOSTED_TOOL_TOKENS = 10_000  # allowance for a server/hosted tool's hidden prompt and fetched content
DOCUMENT_PAGE_TOKENS = 3_000
UNKNOWN_CONTENT_TOKENS = 100_000
AUDIO_B64_CHARS_PER_TOKEN = 64
# Deeper bodies are refused (BodyTooDeep): real ones nest a few dozen levels at most (OpenAI structured
# outputs allow 10 levels of schema), and the walk must stay far from Python's recursion limit.
MAX_DEPTH = 200

# One output token per this many characters when a stream was cut before the provider's usage arrived.
CHARS_PER_TOKEN_ESTIMATE = 2

_IMAGE_TYPES = frozenset({"image_url", "image", "input_image"})
_AUDIO_TYPE = "input_audio"
_FILE_TYPES = frozenset({"file", "input_file", "document"})
# Any part type the walk treats as media, as raw JSON, built from the sets above (each name with or
# without its "input_" prefix: a little more, such as input_document, only costs a walk). `re`
# searches for the literal prefix first: one scan of ~40 µs per 100 KB, where four bytes.find took
# ~50 µs each.
_MEDIA_NAMES = sorted({t.removeprefix("input_") for t in (*_IMAGE_TYPES, _AUDIO_TYPE, *_FILE_TYPES)})
_MEDIA_TYPE = re.compile(rb'"type"\s*:\s*"(?:input_)?(?:' + "|".join(_MEDIA_NAMES).encode() + rb')"')
_ESCAPED_ASCII = re.compile(rb"\\u00[2-7]")
_FUNCTION_TOOL_TYPES = frozenset({None, "function", "custom"})


def _str_len(s: str) -> int:
    """UTF-8 length of `s` as a JSON string literal (quotes and escapes included)."""
    quoted = _encode_basestring(s)  # json's C escaper: one pass, no re-parsing
    return len(quoted) if quoted.isascii() else len(quoted.encode("utf-8", "surrogatepass"))


class BodyTooDeep(TranslationError):
    """A request body nested deeper than `MAX_DEPTH` levels (a 400 for the caller, never a RecursionError)."""

    def __init__(self) -> None:
        super().__init__(f"request body is nested too deeply (more than {MAX_DEPTH} levels of arrays and "
                         "objects)", None, "invalid_value")


def _kind(obj: dict[str, Any]) -> str | None:
    # A `type` that is not a string is data, not a part type: e.g. a JSON Schema property named "type"
    # ({"properties": {"type": {"type": "string"}}}) must not be looked up in a set (unhashable dict).
    kind = obj.get("type")
    return kind if type(kind) is str else None


class _Walker:
    __slots__ = ("image_tokens",)

    def __init__(self, image_tokens: int) -> None:
        self.image_tokens = image_tokens

    def walk(self, obj: Any, depth: int = 0) -> int:
        """At least the UTF-8 length of `json.dumps(obj, ensure_ascii=False)`, binary payloads replaced."""
        if isinstance(obj, str):
            return _str_len(obj)
        if isinstance(obj, dict):
            if depth >= MAX_DEPTH:
                raise BodyTooDeep()
            kind = _kind(obj)
            if kind in _IMAGE_TYPES and ("image_url" in obj or "source" in obj or "file_id" in obj):
                return self.image_tokens
            if kind == _AUDIO_TYPE:
                return self._audio(obj)
            if kind in _FILE_TYPES:
                special = self._file(obj)
                if special is not None:
                    return special
            n = 2  # braces
            for key, value in obj.items():
                # key, ": " and ", "
                n += ((_str_len(key) if isinstance(key, str) else len(str(key)) + 2) + 4
                      + self.walk(value, depth + 1))
            return n
        if isinstance(obj, list | tuple):
            if depth >= MAX_DEPTH:
                raise BodyTooDeep()
            return 2 + sum(self.walk(item, depth + 1) + 2 for item in obj)
        if obj is None or isinstance(obj, bool):
            return 5
        if isinstance(obj, int | float):
            return len(repr(obj))
        return _str_len(str(obj))

    def _audio(self, obj: dict[str, Any]) -> int:
        audio = obj.get("input_audio")
        data = audio.get("data") if isinstance(audio, dict) else None
        if isinstance(data, str):
            return len(data) // AUDIO_B64_CHARS_PER_TOKEN + PER_MESSAGE_TOKENS
        return UNKNOWN_CONTENT_TOKENS

    def _file(self, obj: dict[str, Any]) -> int | None:
        """Bound for a file/document part, or None to walk it as text (plain-text documents)."""
        kind = _kind(obj)
        holder: Any = obj
        if kind == "file":  # OpenAI chat: {"type": "file", "file": {file_data | file_id, filename}}
            holder = obj.get("file")
        elif kind == "document":  # Anthropic: {"type": "document", "source": {...}, "title"?, ...}
            source = obj.get("source")
            if not isinstance(source, dict):
                return None
            stype = _kind(source)
            if stype == "base64" and isinstance(source.get("data"), str):
                return len(source["data"]) + DOCUMENT_PAGE_TOKENS
            if stype in ("url", "file"):
                return UNKNOWN_CONTENT_TOKENS
            return None  # text or content sources: their text is walked
        if not isinstance(holder, dict):
            return None
        data = holder.get("file_data")
        if isinstance(data, str):
            return len(data) + DOCUMENT_PAGE_TOKENS
        if holder.get("file_id") is not None or holder.get("file_url") is not None:
            return UNKNOWN_CONTENT_TOKENS
        return None


def _image_tokens(body: dict[str, Any], api: str) -> int:
    model = body.get("model")
    model = model.lower() if isinstance(model, str) else ""
    if api == "anthropic.messages" or model.startswith("claude"):
        return ANTHROPIC_IMAGE_TOKENS
    if "gpt-4o-mini" in model:
        return GPT_4O_MINI_IMAGE_TOKENS
    return OPENAI_IMAGE_TOKENS


def _tool_overhead(tools: Any, anthropic: bool) -> int:
    if not isinstance(tools, list) or not tools:
        return 0
    n = ANTHROPIC_TOOL_PROMPT_TOKENS if anthropic else OPENAI_TOOLS_HEADER_TOKENS
    for tool in tools:
        kind = _kind(tool) if isinstance(tool, dict) else None
        n += PER_TOOL_TOKENS
        # Anthropic custom tools have no type (or "custom"); typed ones (bash_2025..., web_search_...)
        # are server-defined. OpenAI: "function" (and "custom") are client-defined, the rest hosted.
        if kind not in _FUNCTION_TOOL_TYPES:
            n += HOSTED_TOOL_TOKENS
    return n


def input_token_bound(body: dict[str, Any], api: str, raw: bytes | None = None) -> int:
    """An upper bound of the input tokens the provider will bill for this request body.

    `api` is one of `APIS`. See the module docstring for how it is computed and how loose it is.
    `raw`, the body's JSON bytes, enables a fast path on the proxy's hot path: with no binary
    payloads, the raw length already bounds the UTF-8 length of every string in it, so the walk
    is skipped.
    """
    if not isinstance(body, dict):
        return PER_REQUEST_TOKENS
    # A media part (image, audio, file, document: their `type`) is what the walk counts differently from
    # its bytes; without one, the raw length bounds every string. One regex scan with a literal prefix
    # finds any such `type` (the word alone, as "file" in every coding agent's file_path, used to send
    # those bodies down the walk: 0.7 ms for a 110 KB Claude Code request). An escaped ASCII character
    # (`\u0069mage`) could hide a type from the scan, so such a body is walked.
    if raw is not None and _MEDIA_TYPE.search(raw) is None and _ESCAPED_ASCII.search(raw) is None:
        total = PER_REQUEST_TOKENS + len(raw)
    else:
        total = PER_REQUEST_TOKENS + _Walker(_image_tokens(body, api)).walk(body)
    for key in ("messages", "input"):
        items = body.get(key)
        if isinstance(items, list):
            total += PER_MESSAGE_TOKENS * len(items)
    if isinstance(body.get("system"), list):
        total += PER_MESSAGE_TOKENS * len(body["system"])
    tools = body.get("tools")
    if isinstance(tools, list) and tools:  # (_tool_overhead is 0 otherwise: skip the model check)
        total += _tool_overhead(tools, api == "anthropic.messages" or _is_claude(body))
    if isinstance(body.get("mcp_servers"), list):  # Anthropic MCP connector: tool lists fetched server-side
        total += HOSTED_TOOL_TOKENS * len(body["mcp_servers"])
    if api == "openai.responses" and (body.get("previous_response_id") or body.get("conversation")):
        total += UNKNOWN_CONTENT_TOKENS  # earlier turns held by OpenAI count as input again
    return total


def _is_claude(body: dict[str, Any]) -> bool:
    model = body.get("model")
    return isinstance(model, str) and model.lower().startswith("claude")


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value.is_integer():
        return int(value)
    return None


def max_output_tokens(body: dict[str, Any], api: str, default: int) -> int:
    """The most output tokens this request can be billed for; `default` when the body sets no limit.

    OpenAI chat: the larger of `max_completion_tokens` / `max_tokens` (a translator may honour either),
    times `n` choices. Completions: `max_tokens` times max(`n`, `best_of`). Responses:
    `max_output_tokens`. Anthropic: `max_tokens` (includes any thinking budget). Embeddings: 0.
    """
    if api == "openai.embeddings":
        return 0
    if not isinstance(body, dict):
        return default
    if api == "openai.chat":
        a = _positive_int(body.get("max_completion_tokens"))
        b = _positive_int(body.get("max_tokens"))
        if a is None:
            limit = default if b is None else b
        else:
            limit = a if b is None else max(a, b)
        n = body.get("n")
        return limit if n is None else limit * _choices(n)
    if api == "openai.completions":
        given = _positive_int(body.get("max_tokens"))
        per_choice = default if given is None else given
        return per_choice * max(_choices(body.get("n")), _choices(body.get("best_of")))
    key = "max_output_tokens" if api == "openai.responses" else "max_tokens"
    given = _positive_int(body.get(key))
    return default if given is None else given


def _choices(value: Any) -> int:
    n = _positive_int(value)
    return n if n is not None and n >= 1 else 1


def estimate_output_tokens_from_text(n_chars: int) -> int:
    """Output tokens to charge for `n_chars` characters relayed before a stream was cut.

    One token per `CHARS_PER_TOKEN_ESTIMATE` (2) characters, rounded up: about 2× the real count for
    English (~4 characters per token) and ~1.5× for code, so a cut stream is charged on the high
    side; CJK text (~1 character per token) is undercounted. The charge is marked estimated.
    """
    if n_chars <= 0:
        return 0
    return -(-n_chars // CHARS_PER_TOKEN_ESTIMATE)
