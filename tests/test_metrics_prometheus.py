"""A real Prometheus server (Debian's `prometheus` package; `.ci/run` installs it) scrapes an
in-process engine on loopback after real SDK calls; the series are read back through its HTTP API."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.conftest import EngineFactory

PROMETHEUS = shutil.which("prometheus")
DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "deploy" / "grafana-dashboard.json"


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of the shipped Grafana dashboard, with Grafana's
    variables replaced as Grafana would for "All developers" and a short range."""
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel["targets"]:
            expr = (target["expr"].replace("$__rate_interval", "1m").replace("$__range", "5m")
                    .replace("$developer", ".*"))
            out.append((panel["title"], expr))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def query(session: aiohttp.ClientSession, url: str, promql: str) -> list[dict[str, Any]]:
    async with session.get(url + "/api/v1/query", params={"query": promql}) as r:
        body = await r.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


async def eventually(session: aiohttp.ClientSession, url: str, promql: str, expected: float,
                     prom: subprocess.Popen[bytes] | None = None) -> list[dict[str, Any]]:
    """Query until the value is `expected` (Prometheus scrapes every second); the timeout is a hang guard.
    With `prom`, connection errors while it starts are waited out (and its exit is reported)."""
    result: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        while True:
            try:
                result = await query(session, url, promql)
            except aiohttp.ClientConnectionError:
                if prom is None:
                    raise
                if prom.poll() is not None:
                    pytest.fail(f"prometheus exited: {prom.stderr.read().decode() if prom.stderr else ''}")
                result = []
            if result and float(result[0]["value"][1]) == pytest.approx(expected):
                return result
            await asyncio.sleep(0.25)


async def test_prometheus_scrapes_the_series(make_engine: EngineFactory, tmp_path: Path) -> None:
    if PROMETHEUS is None:
        pytest.fail("the prometheus binary is missing: apt-get install prometheus (.ci/run does)")
    engine = await make_engine(token="scrape-token-123", retries={"attempts": 1})  # one try per call
    (tmp_path / "token").write_text(engine.token)
    port = free_port()
    # The scrape config the team deployment docs show, with a 1 s interval.
    (tmp_path / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: iron-tui
    authorization:
      credentials_file: {tmp_path / "token"}
    static_configs:
      - targets: ["127.0.0.1:{engine.port}"]
        labels: {{developer: alice}}
""")
    prom = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as s:
            up = await eventually(s, url, 'up{job="iron-tui"}', 1, prom)
            assert up[0]["metric"]["developer"] == "alice"
            oai = openai.AsyncOpenAI(base_url=engine.openai_base_url, api_key=engine.token, max_retries=0)
            ant = anthropic.AsyncAnthropic(base_url=engine.base_url, api_key=engine.token, max_retries=0)
            output_tokens = 0
            for n in (1, 2):  # a second round after a scrape: rate() and increase() then see every series grow
                for _ in range(2):
                    await oai.chat.completions.create(model="gpt-4o-mini",
                                                      messages=[{"role": "user", "content": "hi"}])
                msg = await ant.messages.create(model="claude-sonnet-4-6", max_tokens=50,
                                                messages=[{"role": "user", "content": "hello"}])
                output_tokens += msg.usage.output_tokens
                with pytest.raises(openai.InternalServerError):
                    await oai.chat.completions.create(model="gpt-4o-mini",
                                                      messages=[{"role": "user", "content": "[[sim:error=500]]"}])
                await eventually(s, url, 'sum(gen_ai_client_operation_duration_seconds_count'
                                         '{gen_ai_request_model="gpt-4o-mini",error_type=""})', 2 * n)
                await eventually(s, url, 'gen_ai_client_operation_duration_seconds_count{error_type="500"}', n)
                await eventually(s, url, 'gen_ai_client_token_usage_sum{gen_ai_provider_name="anthropic",'
                                         'gen_ai_token_type="output"}', output_tokens)
                await eventually(s, url, 'iron_upstream_errors_total{error_type="500"}', n)
            await eventually(s, url, "iron_budget_spent_usd", engine.ledger.spent / 1e6)
            # Every query of the shipped Grafana dashboard is valid PromQL over these series, and the
            # main panels show the calls just made.
            answered: dict[str, list[dict[str, Any]]] = {}
            for title, expr in dashboard_queries():
                answered.setdefault(title, []).extend(await query(s, url, expr))
            for title in ("Spend in range (USD)", "Calls in range", "Failed calls in range", "Tokens per second",
                          "Call duration p50 / p95 by model", "Spend per hour by model", "iron-tui versions"):
                assert answered[title], f"dashboard panel {title!r} has no data"
            [calls] = answered["Calls in range"]
            assert float(calls["value"][1]) > 0  # an extrapolated increase: not exactly the 8 calls
            [p95, *_] = [r for r in answered["Call duration p50 / p95 by model"]
                         if r["metric"].get("gen_ai_request_model") == "gpt-4o-mini"]
            assert 0 < float(p95["value"][1]) <= 81.92
            async with s.get(url + "/api/v1/targets") as r:
                [target] = (await r.json())["data"]["activeTargets"]
            assert target["health"] == "up" and target["lastError"] == ""
            async with s.get(url + "/api/v1/metadata", params={"metric": "gen_ai_client_token_usage"}) as r:
                meta = (await r.json())["data"]["gen_ai_client_token_usage"][0]
            assert meta["type"] == "histogram"
    finally:
        prom.terminate()
        try:
            prom.wait(10)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait(5)
