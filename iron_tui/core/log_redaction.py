"""Log records and tracebacks without keys: what the command line writes to stderr goes through here.

An exception's message may quote an upstream's text, and a traceback quotes the exception: both pass
through `redact_text` (the registered provider keys and anything key-shaped) and, line by line,
`escape_controls`, before they reach the terminal. `install()` puts this on the root logger and on
`sys.excepthook`/`threading.excepthook`; library users (LlmRouter) keep their own logging setup.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from types import TracebackType
from typing import TextIO

from iron_tui.core.redact import redact_text
from iron_tui.core.safe_text import escape_controls


def clean_log_text(text: str) -> str:
    """Keys redacted; each line terminal-safe (the line breaks of a traceback are kept)."""
    return "\n".join(escape_controls(line, keep_tabs=True) for line in redact_text(text).split("\n"))


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return clean_log_text(super().format(record))


def _print_exception(kind: type[BaseException], exc: BaseException, tb: TracebackType | None,
                     out: TextIO | None = None) -> None:
    stream = out or sys.stderr
    stream.write(clean_log_text("".join(traceback.format_exception(kind, exc, tb))))
    stream.flush()


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        _print_exception(args.exc_type, args.exc_value, args.exc_traceback)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record arrives (it may be replaced after install)."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__()
        self._fixed = stream

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return self._fixed or sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # logging.StreamHandler.__init__ assigns it
        pass


_installed: logging.Handler | None = None


def install(stream: TextIO | None = None, level: int = logging.WARNING) -> logging.Handler:
    """Warnings and errors of every logger, and uncaught exceptions, to `stream` (stderr), redacted.
    Idempotent."""
    global _installed
    if _installed is None:
        handler = _Stderr(stream)
        handler.setLevel(level)
        handler.setFormatter(RedactingFormatter("iron-tui: %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        sys.excepthook = _print_exception
        threading.excepthook = _thread_hook
        _installed = handler
    return _installed
