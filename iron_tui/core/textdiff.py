"""Side-by-side line diffs: what the agent sent next to what went upstream, aligned row by row.

    rows = side_by_side(json_lines(client_body), json_lines(upstream_body))

Each row holds the left and right line (None where one side has nothing) and how they differ, so a
front end only has to paint two columns. Lines of a replaced block are paired in order.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Literal

Tag = Literal["equal", "replace", "delete", "insert"]
_EXACT_UP_TO = 4000  # lines per side; beyond, difflib's junk heuristic keeps the diff fast


@dataclass(frozen=True)
class DiffRow:
    tag: Tag
    left: str | None
    right: str | None
    left_no: int | None  # 1-based line numbers
    right_no: int | None


def json_lines(text: str | None) -> list[str]:
    """Pretty-printed JSON lines (keys in their own order), or the text's lines when it is not JSON."""
    if text is None:
        return []
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False).splitlines()
    except ValueError:
        return text.splitlines()


def side_by_side(left: list[str], right: list[str]) -> list[DiffRow]:
    autojunk = max(len(left), len(right)) > _EXACT_UP_TO
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=autojunk)
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows.extend(DiffRow("equal", left[i], right[j], i + 1, j + 1)
                        for i, j in zip(range(i1, i2), range(j1, j2), strict=True))
            continue
        n = max(i2 - i1, j2 - j1)
        for k in range(n):
            i, j = i1 + k, j1 + k
            lt = left[i] if i < i2 else None
            rt = right[j] if j < j2 else None
            kind: Tag = "replace" if lt is not None and rt is not None else ("delete" if rt is None else "insert")
            rows.append(DiffRow(kind, lt, rt, i + 1 if lt is not None else None, j + 1 if rt is not None else None))
    return rows


@dataclass(frozen=True)
class DiffStats:
    same: int
    changed: int
    only_left: int
    only_right: int

    @property
    def identical(self) -> bool:
        return not (self.changed or self.only_left or self.only_right)


def diff_stats(rows: list[DiffRow]) -> DiffStats:
    tags = [r.tag for r in rows]
    return DiffStats(tags.count("equal"), tags.count("replace"), tags.count("delete"), tags.count("insert"))
