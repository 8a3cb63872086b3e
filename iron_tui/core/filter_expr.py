"""Filter expressions over request summaries: parse once (the language is in `filter_syntax`), then
match in memory (`Filter.matches`, by `filter_match`) or in SQLite over the on-disk history
(`Filter.sql`, by `filter_sql`), with one meaning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from iron_tui.core.filter_match import node_matches
from iron_tui.core.filter_sql import node_sql
from iron_tui.core.filter_syntax import All, Any_, Node, Not, Text, parse_node


@dataclass(frozen=True)
class Filter:
    """A parsed filter; the empty filter matches everything."""

    text: str = ""
    node: Node | None = None

    @classmethod
    def parse(cls, text: str) -> Filter:
        """Raises FilterError (with the position) for an expression that cannot be read."""
        return cls(text.strip(), parse_node(text))

    @property
    def active(self) -> bool:
        return self.node is not None

    @property
    def uses_text(self) -> bool:
        """Whether free text is part of it (the caller may then supply bodies to search)."""
        return self.node is not None and _has_text(self.node)

    def matches(self, summary: dict[str, Any], body: Callable[[], str] | None = None) -> bool:
        """`body`, when given, returns the call's request and response bodies for free-text search."""
        return self.node is None or node_matches(self.node, summary, body)

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE clause over the history table's `summary` column, and its parameters."""
        if self.node is None:
            return "1", []
        args: list[Any] = []
        return f"coalesce({node_sql(self.node, args)}, 0)", args


def _has_text(node: Node) -> bool:
    if isinstance(node, Text):
        return True
    if isinstance(node, Not):
        return _has_text(node.node)
    if isinstance(node, All | Any_):
        return any(_has_text(n) for n in node.nodes)
    return False
