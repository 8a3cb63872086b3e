"""Options that cannot crash: absurd numbers, bad config files, a forgotten `--`, a privileged port.

Each exits 2 with one line naming the option, where it came from and the fix (never a traceback).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from iron_tui import LlmRouter
from iron_tui.cli import main

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "IC_TOKEN", "IC_SERVER", "IRON_BUDGET", "IRON_PORT"):
        monkeypatch.delenv(var, raising=False)
    cfg = tmp_path / "config.toml"
    monkeypatch.setenv("IRON_CONFIG", str(cfg))
    return cfg


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("iron-tui: error: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "-inf"])
def test_non_finite_budget_flag(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_error(capsys, "--no-ui", "--openai-key", KEY, f"--budget={value}")
    assert "invalid --budget" in err and "finite number" in err and "leave it unset for no limit" in err


@pytest.mark.parametrize("value", ["inf", "1e400", "NaN"])
def test_non_finite_budget_from_the_environment(value: str, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IRON_BUDGET", value)
    err = one_line_error(capsys, "--no-ui", "--openai-key", KEY)
    assert "--budget from environment variable IRON_BUDGET" in err and "finite number" in err


@pytest.mark.parametrize(("toml", "expect"), [
    ("budget = inf", ["invalid budget from config file", "finite number"]),
    ("budget = 1e400", ["invalid budget from config file", "finite number"]),
    ("budget = nan", ["invalid budget from config file", "finite number"]),
    ("budget = 1e30", ["invalid budget from config file", "at most 1000000000"]),
    ("upstream_timeout = 1e300", ["invalid upstream_timeout", "at most 86400"]),
    ("sync_interval = inf", ["invalid sync_interval", "finite number"]),
    ('[prices."m"]\ninput_per_mtok = inf\noutput_per_mtok = 1', ["prices.m.input_per_mtok", "finite number"]),
    ('[prices."m"]\ninput_per_mtok = 1\noutput_per_mtok = 1\nweb_search_per_1k = nan',
     ["prices.m.web_search_per_1k", "finite number"]),
])
def test_absurd_numbers_in_the_config_file(toml: str, expect: list[str], clean_env: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.write_text(toml + "\n")
    err = one_line_error(capsys, "--no-ui", "--openai-key", KEY)
    for part in expect:
        assert part in err
    assert str(clean_env) in err


def test_undecodable_config_file(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.write_bytes(b'theme = "caf\xe9"\n')  # Latin-1, not UTF-8
    err = one_line_error(capsys, "--no-ui", "--openai-key", KEY)
    assert str(clean_env) in err and "not UTF-8" in err and "save it as UTF-8" in err


def test_huge_values_through_the_python_api_are_value_errors(tmp_path: Path) -> None:
    for bad in (float("inf"), float("nan"), 1e400):
        with pytest.raises(ValueError, match="budget"):
            LlmRouter(provider_key=KEY, budget=bad, data_dir=tmp_path)


def _run(args: list[str], tmp_path: Path, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "IRON_CONFIG")}
    env.update(PYTHONPATH=str(ROOT), IRON_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path))
    return subprocess.run([*prefix, sys.executable, "-m", "iron_tui", *args], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)


def _assert_one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def test_missing_config_named_with_flag_is_an_error_in_a_real_process(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    err = _assert_one_line(_run(["--no-ui", "--openai-key", KEY, "--config", str(missing)], tmp_path))
    assert str(missing) in err and "--config" in err and "does not exist" in err and "config init" in err


def test_infinite_budget_flag_in_a_real_process(tmp_path: Path) -> None:
    err = _assert_one_line(_run(["--no-ui", "--openai-key", KEY, "--budget", "1e400"], tmp_path))
    assert "--budget" in err and "finite number" in err


def test_forgotten_dash_dash_in_a_real_process(tmp_path: Path) -> None:
    err = _assert_one_line(_run(["--no-ui", "--openai-key", KEY, "python", "agent.py", "--verbose"], tmp_path))
    assert "unexpected argument 'python'" in err
    assert "-- python agent.py --verbose" in err  # the fix, ready to copy
    assert KEY not in err  # the options before the stray words are not echoed


def _without_bind_privilege() -> tuple[str, ...]:
    """Root may bind any port: run the child as root without CAP_NET_BIND_SERVICE (util-linux setpriv)."""
    if os.geteuid() != 0:
        return ()
    assert shutil.which("setpriv"), "running as root: setpriv is needed to drop CAP_NET_BIND_SERVICE"
    return ("setpriv", "--bounding-set", "-net_bind_service")


def test_privileged_port_in_a_real_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRON_PORT", "80")
    err = _assert_one_line(_run(["--no-ui", "--openai-key", KEY], tmp_path, _without_bind_privilege()))
    assert "--port from environment variable IRON_PORT" in err and ": 80:" in err
    assert "below 1024" in err and "0 for any free port" in err
