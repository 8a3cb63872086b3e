"""Configuration: precedence, `iron-tui config init|show|path`, and clear errors for every kind of bad value."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from iron_tui.cli import main
from iron_tui.config import SECRET_FIELDS, Settings
from iron_tui.config_cli import config_main
from iron_tui.config_loading import default_data_dir, load_settings, load_settings_with_sources

ROOT = Path(__file__).resolve().parent.parent
LONG_KEY = "sk-proj-DEMOsecret0123456789abcdefghijklmnop"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No developer config or keys leak in; the config file lives in tmp_path."""
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "IC_TOKEN", "IC_SERVER", "IRON_HOST", "IRON_PORT",
                "IRON_BUDGET", "IRON_OPENAI_BASE_URL", "IRON_ANTHROPIC_BASE_URL", "IRON_AGENT", "IRON_DATA_DIR",
                "IRON_THEME"):
        monkeypatch.delenv(var, raising=False)
    cfg = tmp_path / "cfg" / "config.toml"
    monkeypatch.setenv("IRON_CONFIG", str(cfg))
    return cfg


def run_config(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = config_main(list(argv))
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# --- precedence ----------------------------------------------------------------------------------------


def test_precedence_file_then_env_then_cli(clean_env: Path) -> None:
    clean_env.parent.mkdir()
    clean_env.write_text('port = 1111\nbudget = 1.0\ntheme = "file-theme"\nlog_format = "json"\n')
    env = {"IRON_PORT": "2222", "IRON_BUDGET": "2.0"}
    s, path, sources = load_settings_with_sources({"port": 3333}, env=env, config_path=clean_env)
    assert path == clean_env
    assert s.port == 3333 and sources["port"] == "--port"  # CLI beats env and file
    assert s.budget == 2.0 and sources["budget"] == "environment variable IRON_BUDGET"  # env beats file
    assert s.theme == "file-theme" and sources["theme"] == f"config file {clean_env}"
    assert s.log_format == "json"
    assert s.host == "127.0.0.1" and "host" not in sources  # default
    assert s.data_dir == default_data_dir()


def test_config_show_reports_sources(clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.parent.mkdir()
    clean_env.write_text('port = 1111\ntheme = "file-theme"\n')
    monkeypatch.setenv("IRON_PORT", "2222")
    code, out, _ = run_config(capsys, "show", "--budget", "3.5")
    assert code == 0
    values = tomllib.loads(out)  # the output is TOML
    assert values["port"] == 2222 and values["theme"] == "file-theme" and values["budget"] == 3.5
    lines = {line.split(" =")[0]: line for line in out.splitlines() if " = " in line and not line.startswith("#")}
    assert lines["port"].endswith("# from environment variable IRON_PORT")
    assert lines["theme"].endswith(f"# from config file {clean_env}")
    assert lines["budget"].endswith("# from --budget")
    assert "#" not in lines["host"]  # defaults carry no source comment


def test_config_show_masks_every_secret(clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    anthropic_key = "sk-ant-api03-SECRETsecretSECRETsecret0123"
    token = "ic_token_SECRET_value_0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", LONG_KEY)
    code, out, err = run_config(capsys, "show", "--anthropic-key", anthropic_key, "--token", token,
                                "--server-url", "http://127.0.0.1:1")
    assert code == 0, err
    for secret in (LONG_KEY, anthropic_key, token):
        assert secret not in out + err
        assert secret[6:-4] not in out + err
    assert "sk-pro…mnop" in out  # recognisable, not usable
    assert "masked; from environment variable OPENAI_API_KEY" in out
    assert "masked; from --token" in out
    assert "mode: direct (provider keys: anthropic, openai)" in out


def test_config_show_prints_agent_and_price_tables(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.parent.mkdir()
    clean_env.write_text('[[agents]]\nname = "research"\ncommand = ["python", "a.py"]\n[agents.env]\nX = "1"\n'
                         '[prices."my-model"]\ninput_per_mtok = 0.3\noutput_per_mtok = 1.2\n')
    code, out, err = run_config(capsys, "show")
    assert code == 0, err
    values = tomllib.loads(out)
    assert values["agents"] == [{"name": "research", "command": ["python", "a.py"], "env": {"X": "1"},
                                 "restart_on_crash": False, "max_restarts": 3}]
    assert values["prices"] == {"my-model": {"input_per_mtok": 0.3, "output_per_mtok": 1.2}}
    assert out.count(f"# from config file {clean_env}") == 2


# --- init ------------------------------------------------------------------------------------------------


def test_init_round_trips_and_describes_every_option(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert not clean_env.parent.exists()
    code, out, _ = run_config(capsys, "init", "--port", "9001", "--budget", "2.5", "--budget-period", "week",
                              "--theme", "mono", "--strict-pricing", "--server-url", "https://ic.example.com/")
    assert code == 0
    assert f"wrote {clean_env}" in out
    text = clean_env.read_text()
    loaded, _ = load_settings(env={}, config_path=clean_env)
    expected = Settings(port=9001, budget=2.5, budget_period="week", theme="mono", strict_pricing=True,
                        server_url="https://ic.example.com", data_dir=default_data_dir())
    assert loaded.model_dump() == expected.model_dump()
    for name, field in Settings.model_fields.items():  # every option is in the file, with its description
        assert f"{name} =" in text or f"[{name}" in text or f"[[{name}" in text, name
        assert f"# {field.description}" in text, name
    assert stat.S_IMODE(clean_env.stat().st_mode) == 0o600  # users may add a key later


def test_init_with_defaults_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "elsewhere" / "iron.toml"
    code, _, _ = run_config(capsys, "init", "--path", str(target))
    assert code == 0
    loaded, _ = load_settings(env={}, config_path=target)
    assert loaded.model_dump() == Settings(data_dir=default_data_dir()).model_dump()


def test_init_never_writes_secrets(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_config(capsys, "init", "--openai-key", LONG_KEY, "--token", "ic_tok_SECRET_12345678")
    assert code == 0
    text = clean_env.read_text()
    assert LONG_KEY not in text and "ic_tok_SECRET_12345678" not in text
    assert "not written (secrets stay out of the file): --openai-key, --token" in out
    for name in SECRET_FIELDS:
        assert f"# {name} = " in text  # a commented-out placeholder instead
    values = tomllib.loads(text)
    assert not SECRET_FIELDS & values.keys()


def test_init_refuses_to_overwrite_without_force(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.parent.mkdir()
    clean_env.write_text("port = 1234\n")
    code, _, err = run_config(capsys, "init")
    assert code == 2
    assert err.count("\n") == 1 and str(clean_env) in err and "--force" in err
    assert clean_env.read_text() == "port = 1234\n"
    code, _, _ = run_config(capsys, "init", "--force", "--port", "4321")
    assert code == 0
    assert tomllib.loads(clean_env.read_text())["port"] == 4321


def test_init_rejects_invalid_flags(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_config(capsys, "init", "--log-format", "xml")
    assert code == 2
    assert "--log-format" in err and "'xml'" in err and "'text' or 'json'" in err
    assert not clean_env.parent.exists()  # nothing written, no directory created


# --- path ------------------------------------------------------------------------------------------------


def test_config_path_prints_both_paths_and_creates_nothing(clean_env: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_config(capsys, "path")
    assert code == 0
    assert out.splitlines() == [f"config file: {clean_env}", f"data dir: {default_data_dir()}"]
    assert "config init" in err
    assert not clean_env.parent.exists()
    monkeypatch.setenv("IRON_DATA_DIR", str(tmp_path / "state"))
    code, out, _ = run_config(capsys, "path", "--config", str(tmp_path / "other.toml"))
    assert out.splitlines() == [f"config file: {tmp_path / 'other.toml'}", f"data dir: {tmp_path / 'state'}"]


def test_config_without_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_config(capsys)
    assert code == 2 and "init, show or path" in err


# --- invalid values: one line, exit 2, naming the option, the value and what is allowed -------------------

FILE_CASES = [
    # (toml, what the message must contain)
    ('port = "abc"', ["invalid port", "'abc'", "whole number"]),
    ("port = 70000", ["invalid port", "70000", "at most 65535"]),
    ('budget = "lots"', ["invalid budget", "'lots'", "expected a number"]),
    ("upstream_timeout = 0", ["invalid upstream_timeout", "0", "greater than 0"]),
    ('allow_remote = "maybe"', ["invalid allow_remote", "'maybe'", "true or false"]),
    ('log_format = "xml"', ["invalid log_format", "'xml'", "'text' or 'json'"]),
    ('budget_period = "year"', ["invalid budget_period", "'year'", "'session', 'day', 'week' or 'month'"]),
    ('server_url = "ftp://x"', ["invalid server_url", "'ftp://x'", "http:// or https://"]),
    ("data_dir = 123", ["invalid data_dir", "123", "path"]),
    ('agents = "python a.py"', ["invalid agents", "'python a.py'", "expected a list"]),
    ('[[agents]]\nname = "x"', ["invalid agents[0]", "missing required key 'command'"]),
    ('[[agents]]\nname = "x"\ncommand = 5', ["invalid agents[0].command", "5", "a string or a list"]),
    ('[prices."gpt-x"]\ninput_per_mtok = -1\noutput_per_mtok = 1',
     ["invalid prices.gpt-x.input_per_mtok", "-1", "at least 0"]),
    ('[prices."gpt-5"]\ninput_per_mtok = 1\noutput_per_mtok = 1\nweb_search_per_1k = -10',
     ["invalid prices.gpt-5.web_search_per_1k", "-10", "at least 0"]),
    ('[prices."gpt-5"]\ninput_per_mtok = 1\noutput_per_mtok = 1\nweb_search_per_1k = "ten"',
     ["invalid prices.gpt-5.web_search_per_1k", "'ten'", "expected a number"]),
    ('[prices."gpt-5"]\ninput_per_mtok = 1\noutput_per_mtok = 1\nweb_search_per_1k = 1e12',
     ["invalid prices.gpt-5.web_search_per_1k", "at most 1000000"]),
    ("prices = 5", ["invalid prices", "5", "expected a table"]),
    ("budjet = 5", ["unknown option budjet", "did you mean 'budget'"]),
    ("port = ", ["is not valid TOML", "line 1"]),
    ('anthropic_key = 5', ["invalid anthropic_key", "<secret>", "expected a string"]),
]


@pytest.mark.parametrize(("toml", "expect"), FILE_CASES, ids=[c[0].split("\n")[-1][:24] for c in FILE_CASES])
def test_invalid_config_file_values(toml: str, expect: list[str], clean_env: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.parent.mkdir()
    clean_env.write_text(toml + "\n")
    code = main(["--no-ui", "--openai-key", "sk-test-0123456789abcdef"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("iron-tui: error: ")
    assert str(clean_env) in err  # says which file
    for part in expect:
        assert part in err
    assert "Traceback" not in err


ENV_CASES = [
    ("IRON_PORT", "eighty", ["--port from environment variable IRON_PORT", "'eighty'", "whole number"]),
    ("IRON_BUDGET", "5$", ["--budget from environment variable IRON_BUDGET", "'5$'", "expected a number"]),
    ("IC_SERVER", "localhost:3000", ["--server-url from environment variable IC_SERVER", "'localhost:3000'",
                                     "http:// or https://"]),
    ("IRON_OPENAI_BASE_URL", "api.openai.com", ["IRON_OPENAI_BASE_URL", "'api.openai.com'", "http://"]),
    ("IRON_HOST", "0.0.0.0", ["'0.0.0.0' is not a loopback address", "--allow-remote"]),
]


@pytest.mark.parametrize(("var", "value", "expect"), ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_invalid_environment_values(var: str, value: str, expect: list[str], monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(var, value)
    code = main(["--no-ui", "--openai-key", "sk-test-0123456789abcdef"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1
    for part in expect:
        assert part in err


CLI_CASES = [
    (["--port", "abc"], ["--port", "'abc'", "whole number"]),
    (["--port", "-1"], ["--port", "-1", "at least 0"]),
    (["--budget", "ten"], ["--budget", "'ten'", "number"]),
    (["--budget", "-5"], ["--budget", "-5", "at least 0"]),
    (["--log-format", "xml"], ["--log-format", "'xml'", "'text' or 'json'"]),
    (["--budget-period", "yearly"], ["--budget-period", "'yearly'", "'session', 'day', 'week' or 'month'"]),
    (["--server-url", "ic.example.com"], ["--server-url", "'ic.example.com'", "http:// or https://"]),
    (["--max-body-bytes", "10"], ["--max-body-bytes", "10", "at least 1024"]),
    (["--flush-timeout", "soon"], ["--flush-timeout", "'soon'", "number"]),
]


@pytest.mark.parametrize(("args", "expect"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_invalid_command_line_values(args: list[str], expect: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["--no-ui", "--openai-key", "sk-test-0123456789abcdef", *args])
    except SystemExit as exc:  # argparse's own type errors
        code = int(exc.code or 0)
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1
    for part in expect:
        assert part in err


def test_invalid_data_dir_is_one_line_in_a_real_process(tmp_path: Path) -> None:
    """A data dir that is a file: the real command prints one line and no traceback."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.update(IRON_CONFIG=str(tmp_path / "none.toml"), PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "iron_tui", "--no-ui", "--port", "0", "--openai-key", "sk-test-0123456789abcdef",
         "--data-dir", str(blocker / "sub")],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and str(blocker) in proc.stderr
