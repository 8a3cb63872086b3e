"""The self-contained dashboard page (`GET /dashboard`, static/dashboard.html) and its Content Security
Policy: only the page's own inline script may run, and it may connect only to this server."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from iron_tui.core.proxy.guard import RequestGuard

_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def load_page() -> tuple[bytes, str]:
    """The page's bytes and the CSP hash of its inline script."""
    html = resources.files("iron_tui.core").joinpath("static/dashboard.html").read_text("utf-8")
    return html.encode("utf-8"), _inline_script_hash(html)


def page_response(request: web.Request, page: tuple[bytes, str], guard: RequestGuard | None) -> web.Response:
    body, script_hash = page
    # The Host header is the client's; only a plain host[:port] the guard names itself may go into the
    # policy (with --allow-remote any Host is served, but 'self' covers the page's own origin).
    host = request.host if _HOST.fullmatch(request.host) else None
    if host is not None and guard is not None and not guard.policy.host_listed(host):
        host = None
    ws_src = f" ws://{host} wss://{host}" if host else ""
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src {script_hash}; "
        f"connect-src 'self'{ws_src}; "
        "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return web.Response(
        body=body,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": csp,
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _inline_script_hash(html: str) -> str:
    """CSP hash of the page's single inline <script>, so no other script can run on the page."""
    m = re.search(r"<script>(.*?)</script>", html, re.DOTALL)
    if m is None:
        return "'none'"
    digest = hashlib.sha256(m.group(1).encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"
