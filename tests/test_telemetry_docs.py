"""The telemetry docs hold: the deployment files are valid for Prometheus' own tool, the Grafana
dashboard and the alerts only use series iron-tui exports, and docs/telemetry.md lists exactly those."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from iron_tui.core.engine import Engine
from iron_tui.core.metrics_route import render
from tests.conftest import EngineFactory

DOCS = Path(__file__).resolve().parent.parent / "docs"
DEPLOY = DOCS / "deploy"
PROMTOOL = shutil.which("promtool")
_NAME = re.compile(r"\b((?:gen_ai|iron)_[a-z_]+)\b")


def _without_labels(promql: str) -> str:
    """The expression without `by (...)` groupings and `{...}` matchers: only metric names are left."""
    return re.sub(r"\{[^}]*\}", "", re.sub(r"\b(?:by|without) \([^)]*\)", "", promql))


def promtool(*args: str) -> None:
    if PROMTOOL is None:
        pytest.fail("promtool is missing: apt-get install prometheus (.ci/run does)")
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_files_are_valid() -> None:
    promtool("check", "config", "--syntax-only", str(DEPLOY / "prometheus-agent.yml"), str(DEPLOY / "prometheus.yml"))
    promtool("check", "rules", str(DEPLOY / "iron-tui-alerts.yml"))


async def exported_names(make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch) -> tuple[set[str], set[str]]:
    """(family names, sample names) of a tracing engine's exposition."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # families of tracing too
    engine: Engine = await make_engine()
    families: set[str] = set()
    samples: set[str] = set()
    for line in render(engine, openmetrics=False).splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            families.add(name)
            suffixes = ("_bucket", "_count", "_sum") if kind == "histogram" else ("",)
            samples.update(name + s for s in suffixes)
    return families, samples


async def test_dashboard_and_alerts_use_exported_series(make_engine: EngineFactory,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _, samples = await exported_names(make_engine, monkeypatch)
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    assert dash["uid"] and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += re.findall(r"^\s+expr: (.+)$", (DEPLOY / "iron-tui-alerts.yml").read_text(), re.M)
    used = {name for e in exprs for name in _NAME.findall(_without_labels(e))}
    assert used and used <= samples, sorted(used - samples)
    # The main families all have a panel.
    for name in ("gen_ai_client_token_usage_sum", "gen_ai_client_operation_duration_seconds_bucket",
                 "iron_cost_usd_total", "iron_budget_spent_usd", "iron_upstream_errors_total"):
        assert name in used


async def test_telemetry_doc_lists_every_series(make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    families, _ = await exported_names(make_engine, monkeypatch)
    text = (DOCS / "telemetry.md").read_text()
    table = text.split("### The series", 1)[1].split("\n\n**", 1)[0]
    documented = {n for row in table.splitlines() if row.startswith("| `")
                  for n in re.findall(r"`((?:gen_ai|iron)_[a-z_]+)`", row.split("|")[1])}
    assert documented == families
