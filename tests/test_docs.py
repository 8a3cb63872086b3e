"""The documentation cannot drift from the code: the configuration reference is generated, and the
architecture page only names modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

from iron_tui.cli import build_parser
from iron_tui.config import AgentPresetConfig, PriceConfig, ProviderConfig, RetryConfig, Settings
from iron_tui.config_docs import render_config_reference
from iron_tui.config_loading import ENV_VARS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_configuration_reference_is_up_to_date() -> None:
    committed = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert committed == render_config_reference(), (
        "docs/configuration.md is stale: run `python -m iron_tui.config_docs --write`"
    )


def test_configuration_reference_lists_every_option_flag_and_variable() -> None:
    text = render_config_reference()
    every: dict[str, list[str]] = {}
    for m in re.finditer(r"^\| `(\w+)` \|.*$", text, re.M):
        every.setdefault(m.group(1), []).append(m.group(0))
    rows = {name: found[0] for name, found in every.items()}  # the options table comes first
    for model in (Settings, AgentPresetConfig, PriceConfig, ProviderConfig, RetryConfig):
        for name, field in model.model_fields.items():
            assert name in every, name
            assert field.description and any(field.description in row for row in every[name]), name
    for name, var in ENV_VARS.items():
        assert f"`{var}`" in rows[name]
    flags = {a.dest: a.option_strings[0] for a in build_parser()._actions if a.option_strings}
    for name in Settings.model_fields:
        if name in flags:
            assert f"`{flags[name]}`" in rows[name], name
    assert "`8478`" in rows["port"] and "unlimited" in rows["budget"]
    assert "URL" in rows["server_url"] and "`session`, `day`, `week`, `month`" in rows["budget_period"]


def test_architecture_names_only_real_modules() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:iron_tui/|core/)[\w/.]*)`", text))
    assert len(paths) > 15
    for p in paths:
        target = ROOT / p if p.startswith("iron_tui/") else ROOT / "iron_tui" / p
        assert target.exists(), f"docs/architecture.md names {p}, which does not exist"
    # Bare names in the module map rows (`budget.py` after `iron_tui/core/estimate.py`) exist too.
    for row in re.findall(r"^\| (`iron_tui/[^|]+)\|", text, re.M):
        parts = re.findall(r"`([\w/.]+)`", row)
        base = ROOT / parts[0]
        folder = base if base.is_dir() else base.parent
        for name in parts[1:]:
            assert (folder / name).exists() or (ROOT / name).exists(), f"{name} in row {row!r}"


def test_docs_links_resolve() -> None:
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+://", target):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
