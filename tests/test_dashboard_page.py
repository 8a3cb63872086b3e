"""The built-in /dashboard page, in real headless Chromium driven over the DevTools protocol.

Needs Debian's `chromium` package (`apt-get install -y chromium`); without it these tests fail loudly.
The browser only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from iron_tui.core.bus import EventBus
from iron_tui.core.clock import FixedClock
from iron_tui.core.events import (
    AgentStateChanged,
    RequestFinished,
    RequestRecord,
    RequestStarted,
    SpendChanged,
    SyncStatus,
)
from iron_tui.core.feed import Feed
from iron_tui.core.feed_messages import snapshot_state
from iron_tui.core.health import ProviderHealth
from iron_tui.core.ledger_schema import CallRow
from iron_tui.core.recovery import RecoveredCall, interrupted_record
from iron_tui.core.token_usage import TokenUsage
from tests.conftest import calls_with_429

CHROMIUM = "/usr/bin/chromium"
TOKEN = "dash-test-token-91c2"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def record(rid: str, model: str, **values: Any) -> RequestRecord:
    rec = RequestRecord(id=rid, started_at=T0, method="POST", path="/v1/chat/completions", api="openai.chat",
                        model=model, provider="openai")
    for key, value in values.items():
        setattr(rec, key, value)
    return rec


def initial_state() -> dict[str, Any]:
    old = record("req_old", "gpt-4o", state="ok", status=200, latency_ms=95.0, input_tokens=10,
                 output_tokens=5, cost_micros=75)
    return snapshot_state(mode="demo", proxy_url="http://127.0.0.1:8478/v1", spent_micros=0,
                          limit_micros=5_000_000, requests=[old.summary()])


@dataclass
class Server:
    bus: EventBus
    feed: Feed
    base: str


@asynccontextmanager
async def dashboard_server() -> AsyncIterator[Server]:
    bus = EventBus()
    feed = Feed(bus, token=TOKEN, snapshot=initial_state, clock=FixedClock(T0))
    app = web.Application()
    app.router.add_get("/ws", feed.handle)
    app.router.add_get("/dashboard", feed.handle_dashboard)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await feed.start()
    try:
        yield Server(bus, feed, f"http://127.0.0.1:{port}")
    finally:
        await feed.close()
        await runner.cleanup()


# --- a minimal DevTools-protocol client ----------------------------------------------------------


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        await self._ws.send_json({"id": self._next, "method": method, "params": params})
        while True:
            msg = await self._ws.receive_json(timeout=10)
            if msg.get("id") == self._next:
                assert "error" not in msg, msg
                result: dict[str, Any] = msg["result"]
                return result

    async def eval(self, expression: str) -> Any:
        res = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in res, res["exceptionDetails"]
        return res["result"].get("value")

    async def wait_for(self, expression: str, pred: Callable[[Any], bool], timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            res = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
            # An exception means the page has not loaded yet (the elements are missing): try again.
            value = res.get("exceptionDetails") or res["result"].get("value")
            if "exceptionDetails" not in res and pred(value):
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"page never satisfied the condition; last value: {value!r}")


@asynccontextmanager
async def chromium_page(url: str, tmp: Path) -> AsyncIterator[Page]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    profile = tmp / "chromium-profile"
    profile.mkdir()
    args = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", url,
    ]
    env = {**os.environ, "HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config"),
           "XDG_CACHE_HOME": str(tmp / "cache")}
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, so its helper processes can be ended with it
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if proc.returncode is not None or time.monotonic() > deadline:
                err = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
                raise AssertionError(f"Chromium did not start its DevTools endpoint:\n{err[-2000:]}")
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            target = None
            while target is None:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    targets = await resp.json()
                target = next((t for t in targets if t.get("type") == "page"), None)
                if target is None:
                    assert time.monotonic() < deadline, f"no page target: {targets}"
                    await asyncio.sleep(0.05)
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def wait_until(cond: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"{what} not reached in time"
        await asyncio.sleep(0.02)


PAGE_STATE = """JSON.stringify({
  rows: Array.from(document.querySelectorAll('#requests tbody tr')).map(
    tr => ({id: tr.dataset.id || null, cells: Array.from(tr.cells).map(td => td.textContent)})),
  spend: document.getElementById('spend').textContent,
  bar: document.querySelector('#bar > div').style.width,
  sync: document.getElementById('sync').textContent,
  agent: document.getElementById('agent').textContent,
  conn: document.getElementById('conn').textContent,
  login: document.getElementById('login').hasAttribute('data-show'),
  hash: location.hash,
  syncSub: document.getElementById('sync-sub').textContent,
  worst: document.getElementById('providers-card').dataset.worst || null,
  providers: Array.from(document.querySelectorAll('#providers .prov')).map(
    p => ({name: p.dataset.provider, state: p.dataset.state, text: p.textContent})),
})"""


def state_of(raw: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


async def test_request_published_on_the_bus_shows_in_the_page(tmp_path: Path) -> None:
    async with dashboard_server() as srv, chromium_page(f"{srv.base}/dashboard#token={TOKEN}", tmp_path) as page:
        await wait_until(lambda: srv.feed.client_count == 1, what="the page authenticating on /ws")
        first = state_of(await page.wait_for(
            PAGE_STATE, lambda v: json.loads(v)["conn"] == "live" and json.loads(v)["rows"][0]["id"]))
        assert [r["id"] for r in first["rows"]] == ["req_old"]  # from the snapshot
        assert first["hash"] == ""  # the token was taken out of the address bar

        started = record("req_new", "gpt-4o-mini-dashboard", stream=True)
        srv.bus.publish(RequestStarted(T0 + 1, request=started.summary()))
        finished = record("req_new", "gpt-4o-mini-dashboard", stream=True, state="ok", status=200,
                          latency_ms=812.4, input_tokens=1200, output_tokens=350, cost_micros=1_234)
        srv.bus.publish(RequestFinished(T0 + 2, request=finished.summary()))
        srv.bus.publish(SpendChanged(T0 + 2, spent_micros=1_500_000, reserved_micros=0, limit_micros=5_000_000))
        srv.bus.publish(SyncStatus(T0 + 2, state="retrying", pending=2, sent=7))
        srv.bus.publish(AgentStateChanged(T0 + 2, agent_id="agent_001", state="running", pid=99))

        shown = state_of(await page.wait_for(
            PAGE_STATE, lambda v: "retrying" in v and "running" in v and "$0.001234" in v))
        assert [r["id"] for r in shown["rows"]] == ["req_new", "req_old"]  # newest first, one row per call
        time_cell, model, provider, status, latency, tokens, cost = shown["rows"][0]["cells"]
        assert time_cell == "00:00:00"
        assert model.startswith("gpt-4o-mini-dashboard") and "stream" in model
        assert (provider, status, latency, tokens, cost) == ("openai", "200", "812 ms", "1,200 / 350", "$0.001234")
        assert shown["spend"] == "$1.500000 of $5.000000" and shown["bar"] == "30%"
        assert shown["sync"] == "retrying" and shown["agent"] == "running"
        assert shown["providers"] == [] and shown["worst"] is None and "dead" not in shown["syncSub"]

        # A provider going down (the engine's own health record publishing), dead letters, and a call
        # a killed iron-tui left in flight (as crash recovery reports it).
        health = ProviderHealth(clock=FixedClock(T0), publish=srv.bus.publish, cooldown_s=30.0)
        health.record("openai", ok=True, latency_ms=420.0)
        health.record("openai", ok=False, hard=False, error="upstream 429")  # degraded
        for _ in range(3):
            health.record("groq", ok=False, error="Groq is unreachable at https://api.groq.com/openai/v1")
        srv.bus.publish(SyncStatus(T0 + 3, state="ok", pending=0, sent=9, dead_letters=2))
        row = CallRow("req_dead", "2026-01-01", 50_000, T0, "openai", "gpt-4o-mini", "openai.chat")
        dead = interrupted_record(RecoveredCall("gone", row, TokenUsage(1000, 500), 650))
        srv.bus.publish(RequestFinished(T0 + 3, request=dead.summary()))
        shown = state_of(await page.wait_for(PAGE_STATE, lambda v: json.loads(v)["worst"] == "down"
                                             and "dead" in json.loads(v)["syncSub"] and "req_dead" in v))
        groq = shown["providers"][0]  # a provider that is down leads, and turns the card red
        assert groq["name"] == "groq" and groq["state"] == "down", shown["providers"]
        assert re.search(r"^✖groqdown · retry in (30|29|28) s · 100% errlast error: Groq is unreachable", groq["text"])
        assert shown["providers"][1]["text"] == "◐openaidegraded · 50% err · 420 mslast error: upstream 429"
        assert "9 sent" in shown["syncSub"] and "2 dead letters" in shown["syncSub"]
        interrupted = shown["rows"][0]
        assert interrupted["id"] == "req_dead" and "interrupted" in interrupted["cells"][1]
        assert "interrupted: the iron-tui relaying this call stopped" in interrupted["cells"][1]
        assert interrupted["cells"][3] == "err" and interrupted["cells"][6] == "~$0.000650"


async def test_rejected_token_asks_for_another(tmp_path: Path) -> None:
    async with dashboard_server() as srv, chromium_page(f"{srv.base}/dashboard#token=wrong", tmp_path) as page:
        shown = state_of(await page.wait_for(PAGE_STATE, lambda v: json.loads(v)["login"]))
        assert shown["conn"] == "token rejected"
        assert srv.feed.client_count == 0
        # Typing the right token into the form connects.
        await page.eval(f"document.getElementById('token').value = {json.dumps(TOKEN)};"
                        "document.querySelector('#login button').click()")
        await page.wait_for(PAGE_STATE, lambda v: json.loads(v)["conn"] == "live")
        assert srv.feed.client_count == 1


async def test_page_is_self_contained_and_locked_down() -> None:
    async with dashboard_server() as srv, aiohttp.ClientSession() as session:
        async with session.get(srv.base + "/dashboard") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            html = await resp.text()
            csp = resp.headers["Content-Security-Policy"]
            assert resp.headers["Cache-Control"] == "no-store"
    # No external resources: nothing the page loads or links to leaves this host.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp


# --- the page as a companion: a real engine, real calls, three widths ------------------------------

WIDTHS = [1280, 768, 375]  # desktop, tablet, phone

LAYOUT = """JSON.stringify((() => {
  const vw = window.innerWidth, rows = Array.from(document.querySelectorAll('#requests tbody tr'));
  const box = (e) => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, w: r.width}; };
  return {
    vw: vw, scroll: document.documentElement.scrollWidth,
    rows: rows.map(tr => ({id: tr.dataset.id || null, cls: tr.className,
      status: tr.querySelector('td.status') ? box(tr.querySelector('td.status')) : null,
      cost: tr.querySelector('td.cost') ? box(tr.querySelector('td.cost')) : null,
      statusText: tr.querySelector('td.status') ? tr.querySelector('td.status').textContent : null,
      why: tr.querySelector('.why') ? tr.querySelector('.why').textContent : null})),
    alert: document.getElementById('alert').textContent,
    count: document.getElementById('filter-count').textContent,
    detailOpen: document.getElementById('detail').hasAttribute('data-open'),
    detail: document.getElementById('detail-body').innerText,
    detailBox: box(document.getElementById('detail')),
    totals: Array.from(document.querySelectorAll('#totals-table tbody tr')).map(tr => Array.from(tr.cells).map(c => c.textContent)),
    conn: document.getElementById('conn').textContent,
  };
})())"""


def layout(raw: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


async def traffic_for_the_page(engine: Any, sim: Any) -> dict[str, str]:
    ids = await calls_with_429(engine, sim)
    # 90 % of the budget spent before the page connects: the snapshot must carry the warning.
    engine.set_budget(engine.ledger.spent / 1_000_000 / 0.9)
    return ids


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_page_works_at_every_width(make_engine: Any, sim: Any, tmp_path: Path, width: int) -> None:
    engine = await make_engine(budget=1.0, retries={"attempts": 1})
    ids = await traffic_for_the_page(engine, sim)
    url = f"{engine.base_url}/dashboard#token={engine.token}"
    async with chromium_page(url, tmp_path) as page:
        await page.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
                        mobile=width < 700)
        shown = layout(await page.wait_for(LAYOUT, lambda v: json.loads(v)["conn"] == "live"
                                           and len(json.loads(v)["rows"]) == 3 and json.loads(v)["totals"]))
        assert shown["scroll"] <= shown["vw"], "nothing is off screen sideways"
        assert [r["id"] for r in shown["rows"]] == [ids["limited"], ids["translated"], ids["native"]]
        for row in shown["rows"]:  # status and cost stay on screen, even on a phone
            assert row["status"]["w"] > 0 and row["status"]["right"] <= shown["vw"]
            assert row["cost"]["w"] > 0 and row["cost"]["right"] <= shown["vw"]
        limited = shown["rows"][0]
        assert "error" in limited["cls"] and limited["statusText"] == "429" and "Rate limit" in (limited["why"] or "")  # the error in the row, not a tooltip
        assert shown["alert"].startswith("Budget warning:")  # restored from the snapshot on connect
        assert any(cells[0] == "gpt-4o" and cells[2] == "1" for cells in shown["totals"]), shown["totals"]

        # Filter: the dashboard's expressions, answered by the server, with the match count.
        await page.eval("const f = document.getElementById('filter'); f.value = 'owls';"
                        "f.dispatchEvent(new Event('input'))")
        shown = layout(await page.wait_for(LAYOUT, lambda v: len(json.loads(v)["rows"]) == 1))
        assert shown["rows"][0]["id"] == ids["native"] and shown["count"] == "1 of 3 requests"
        await page.eval("document.getElementById('filter').dispatchEvent("
                        "new KeyboardEvent('keydown', {key: 'Escape'}))")
        await page.wait_for(LAYOUT, lambda v: len(json.loads(v)["rows"]) == 3)

        # Detail: the translated call side by side with what went upstream, inside the screen.
        await page.eval(f"document.querySelector('tr[data-id=\"{ids['translated']}\"]').click()")
        shown = layout(await page.wait_for(LAYOUT, lambda v: "upstream (anthropic.messages)" in json.loads(v)["detail"]))
        assert shown["detailOpen"] and "── system" in shown["detail"] and "and moles" in shown["detail"]
        assert shown["detailBox"]["left"] >= 0 and shown["detailBox"]["right"] <= shown["vw"] + 1
        await page.eval("document.querySelector('#detail-tabs button[data-tab=\"cost\"]').click()")
        shown = layout(await page.wait_for(LAYOUT, lambda v: "reserved at admission" in json.loads(v)["detail"]))
        assert "/Mtok" in shown["detail"]
        # A failed call opens on its explanation.
        await page.eval(f"document.querySelector('tr[data-id=\"{ids['limited']}\"]').click()")
        shown = layout(await page.wait_for(LAYOUT, lambda v: "what to do" in json.loads(v)["detail"]))
        assert "openai answered 429" in shown["detail"] and "the provider answered" in shown["detail"]
        if width == WIDTHS[0]:
            await check_number_forms(page)


async def check_number_forms(page: Page) -> None:
    """The page formats numbers exactly as core/units.py does."""
    from iron_tui.core import units

    micros = [0, 1, 1530, 2286, 55_500, 20_000, 999_999, 5_000_000, 1_234_500_000]
    durations = [0.4, 420.0, 999.4, 999.6, 2300.0, 59_994.0, 185_000.0]
    waits = [0.0, 0.2, 1.0, 23.4, 59.5, 60.0, 185.0]
    rates = [0.0, 0.004, 0.005, 0.125, 0.135, 0.6, 1.0]  # error rates (rounded half to even, as Python does)
    got = json.loads(await page.eval(
        f"JSON.stringify({{m: {micros}.map(window.ironFormat.money), d: {durations}.map(window.ironFormat.ms),"
        f"w: {waits}.map(window.ironFormat.wait), p: {rates}.map((r) => window.ironFormat.pct(r, 1)),"
        "c: [window.ironFormat.cost({cost_usd: 0.0009, cost_estimated: true}),"
        "    window.ironFormat.cost({cost_usd: null, priced: false})]})"))
    assert got["m"] == [units.money(m) for m in micros]
    assert got["d"] == [units.duration_ms(d) for d in durations]
    assert got["w"] == [units.wait_s(w) for w in waits]
    assert got["p"] == [units.percent(r, 1) for r in rates]
    assert got["c"] == [units.call_cost({"cost_usd": 0.0009, "cost_estimated": True}),
                        units.call_cost({"cost_usd": None, "priced": False})]


async def test_fallbacks_aliases_and_provider_health_on_real_traffic(make_engine: Any, sim: Any,
                                                                     tmp_path: Path) -> None:
    import openai

    engine = await make_engine(retries={"attempts": 1, "cooldown": 60}, models={"fast": "gpt-4o-mini"},
                               fallbacks={"gpt-4o": ["claude-3-5-haiku-latest"]})
    client = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
    try:
        r = await client.chat.completions.with_raw_response.create(
            model="fast", messages=[{"role": "user", "content": "quick one"}])
        alias_id = r.headers["x-iron-request-id"]
        sim.faults.push(status=500, times=3, provider="openai")  # three in a row: openai goes down
        for _ in range(3):
            r = await client.chat.completions.with_raw_response.create(
                model="gpt-4o", max_tokens=20, messages=[{"role": "user", "content": "and now?"}])
        fallback_id = r.headers["x-iron-request-id"]
    finally:
        await client.close()
    async with chromium_page(f"{engine.base_url}/dashboard#token={engine.token}", tmp_path) as page:
        await page.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
        shown = state_of(await page.wait_for(PAGE_STATE, lambda v: len(json.loads(v)["rows"]) == 4
                                             and json.loads(v)["worst"] == "down"))
        by_name = {p["name"]: p for p in shown["providers"]}
        assert by_name["openai"]["state"] == "down" and "retry in" in by_name["openai"]["text"]
        assert by_name["anthropic"]["state"] == "ok" and " ms" in by_name["anthropic"]["text"]
        rows = {r["id"]: r["cells"] for r in shown["rows"]}
        assert rows[fallback_id][1].startswith("claude-3-5-haiku-latest") and "fallback" in rows[fallback_id][1]
        assert rows[alias_id][1].startswith("gpt-4o-mini") and "alias" in rows[alias_id][1]

        # The fallback's detail: asked for gpt-4o, each try in the Cost view.
        await page.eval(f"document.querySelector('tr[data-id=\"{fallback_id}\"]').click()")
        title = await page.wait_for("document.getElementById('detail-title').textContent",
                                    lambda v: "(asked: gpt-4o)" in v)  # loaded
        assert title.startswith(f"{fallback_id} · claude-3-5-haiku-latest (asked: gpt-4o) · 200")
        await page.eval("document.querySelector('#detail-tabs button[data-tab=\"cost\"]').click()")
        detail = layout(await page.wait_for(LAYOUT, lambda v: "try 2" in json.loads(v)["detail"]))["detail"]
        assert re.search(r"asked for\s+gpt-4o \(a fallback served it\)", detail), detail
        assert re.search(r"try 1\s+openai gpt-4o · 500 · ", detail)
        assert re.search(r"try 2\s+anthropic claude-3-5-haiku-latest · 200 · .* · served", detail)
