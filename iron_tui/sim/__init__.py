"""Simulated upstreams (OpenAI, Anthropic) for tests, the benchmark and `iron-tui demo`."""

from __future__ import annotations

from iron_tui.sim.base import Fault, FaultQueue, ReceivedRequest, SimSettings
from iron_tui.sim.providers import ProviderSim
from iron_tui.sim.script import Directives, parse_directives

__all__ = [
    "Directives",
    "Fault",
    "FaultQueue",
    "ProviderSim",
    "ReceivedRequest",
    "SimSettings",
    "parse_directives",
]
