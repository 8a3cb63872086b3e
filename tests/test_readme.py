"""The README's promises: its two set-up commands are the real ones, its examples run, its flags exist."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README, re.M | re.S)


def setup_commands() -> list[str]:
    section = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"^```bash\n(.*?)^```", section, re.M | re.S)]


def test_readme_test_command_is_what_ci_runs() -> None:
    commands = setup_commands()
    assert len(commands) == 2
    test_cmd = commands[1]
    assert test_cmd == "python -m pip install -e '.[test]' && python -m pytest -n 2"
    ci_lines = [ln.strip() for ln in CI.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    # The last thing CI does is the README's test command; pip's -q (output volume only) may differ.
    assert ci_lines[-1].replace("pip install -q ", "pip install ") == test_cmd


def test_readme_product_command_runs_the_demo() -> None:
    product = setup_commands()[0]
    assert product == "python -m pip install -e . && iron-tui demo"
    assert "iron-tui demo" in product


def test_readme_python_examples_are_valid_python() -> None:
    blocks = code_blocks("python")
    assert len(blocks) >= 2
    for block in blocks:
        ast.parse(block)


def _known_flags() -> set[str]:
    import argparse

    from iron_tui.cli import build_parser as main_parser
    from iron_tui.config_cli import build_parser as config_parser
    from iron_tui.demo import build_parser as demo_parser

    parsers = [main_parser(), demo_parser(), config_parser()]
    for action in parsers[2]._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers += list(action.choices.values())
    return {o for p in parsers for a in p._actions for o in a.option_strings if o.startswith("--")}


def test_every_iron_tui_flag_in_the_readme_exists() -> None:
    used: set[str] = set()
    for block in code_blocks("bash"):
        for line in block.splitlines():
            line = line.split("#", 1)[0]
            if "iron-tui" not in line:
                continue
            own = line.split(" -- ", 1)[0]  # what follows " -- " is the agent's command line
            used.update(w for w in shlex.split(own) if w.startswith("--"))
    used.update(re.findall(r"`(--[a-z][a-z-]+)", README))  # inline mentions such as `--budget-period`
    unknown = sorted(used - _known_flags())
    assert not unknown, f"README mentions options that do not exist: {unknown}"


@pytest.mark.parametrize("snippet", [
    "no provider key: set --openai-key/OPENAI_API_KEY or --anthropic-key/ANTHROPIC_API_KEY (direct mode), "
    "or --server-url with --token/IC_TOKEN (server mode)",
    "is not a loopback address; pass --allow-remote to expose the proxy",
])
def test_readme_quotes_real_startup_errors(snippet: str, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from iron_tui.cli import main

    monkeypatch.setenv("IRON_CONFIG", str(tmp_path / "none.toml"))
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "IC_TOKEN", "IC_SERVER"):
        monkeypatch.delenv(var, raising=False)
    args = ["--no-ui"] if "no provider key" in snippet else ["--no-ui", "--host", "0.0.0.0", "--openai-key", "sk-x"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert snippet in err
    assert err in README  # the README quotes the whole line, exactly
