"""The one place that picks how a call is served: (client dialect, provider's dialects) → pair.

A provider speaks one or more dialects (OpenAI itself: Chat Completions and Responses; Anthropic:
Messages; an OpenAI-compatible server: usually Chat Completions only). A call is served natively when
the provider speaks the client's dialect, else by the first registered translation pair to a dialect
the provider speaks, in the provider's order of preference. Adding a pair = a module + one line below.
"""

from __future__ import annotations

from collections.abc import Sequence

from iron_tui.core.dialects import chat_anthropic, messages_chat, responses_anthropic, responses_chat
from iron_tui.core.dialects.base import Pair
from iron_tui.core.dialects.client_apis import NATIVE_PROVIDER_API
from iron_tui.core.dialects.native import NativePair

# Translation pairs, keyed (client dialect, provider dialect).
PAIRS: dict[tuple[str, str], Pair] = {
    (p.client, p.provider): p
    for p in (
        chat_anthropic.PAIR,
        messages_chat.PAIR,
        responses_anthropic.PAIR,
        responses_chat.PAIR,
    )
}

NATIVE: dict[str, NativePair] = {api: NativePair(api) for api in NATIVE_PROVIDER_API}  # type: ignore[arg-type]


def select(client: str, provider_apis: Sequence[str]) -> tuple[Pair, str, bool] | None:
    """(pair, the provider dialect it speaks upstream, native?) for a call, or None if none serves it."""
    native = NATIVE_PROVIDER_API.get(client)
    if native is not None and native in provider_apis:
        return NATIVE[client], native, True
    for api in provider_apis:
        pair = PAIRS.get((client, api))
        if pair is not None:
            return pair, api, False
    return None
