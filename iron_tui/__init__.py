"""iron-tui: a local LLM gateway for AI agents with a live terminal dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from iron_tui.router import LlmRouter

__all__ = ["LlmRouter", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy so that `import iron_tui` stays cheap and never pulls in aiohttp or Textual.
    if name == "LlmRouter":
        from iron_tui.router import LlmRouter

        return LlmRouter
    raise AttributeError(f"module 'iron_tui' has no attribute {name!r}")
