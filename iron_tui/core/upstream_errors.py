"""What the provider client (upstream.py) raises for a failed exchange, and the internal signal of a
connection that died before any byte of its answer."""

from __future__ import annotations


class UpstreamError(Exception):
    """Base of everything this client raises for a failed exchange."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made (refused, DNS, TLS): the request was never sent."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """Connecting, or waiting for the next bytes of the answer, took longer than allowed."""


class UpstreamProtocolError(UpstreamError):
    """The connection broke mid-answer or the bytes were not valid HTTP."""


class StaleConnection(Exception):
    """A connection died before any byte of the answer arrived; `quick` when that was within moments of
    sending (the keep-alive race) and not our own doing."""

    def __init__(self, quick: bool = True) -> None:
        super().__init__()
        self.quick = quick
