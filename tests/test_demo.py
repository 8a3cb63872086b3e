"""`iron-tui demo`: the whole product against simulated providers and control server, in a real process."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from iron_tui.demo import DEMO_BUDGET_USD, demo_main

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "IC_TOKEN", "IC_SERVER")}
    env.update(IRON_CONFIG=str(tmp_path / "no-config.toml"), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return env


def test_demo_no_ui_tells_the_whole_story(tmp_path: Path) -> None:
    """One real run (the demo takes seconds, so it runs once and every check reads its output)."""
    data = tmp_path / "state"
    proc = subprocess.run(
        [sys.executable, "-m", "iron_tui", "demo", "--no-ui", "--port", "0", "--data-dir", str(data)],
        capture_output=True, text=True, timeout=90, env=_env(tmp_path), cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "demo: all steps done" in proc.stdout
    check_story(proc.stdout)
    check_summary(proc.stdout)
    for key in ("sk-sim-openai", "sk-ant-sim-anthropic"):  # provider keys are never shown
        assert key not in proc.stdout + proc.stderr
    assert (data / "history.sqlite3").is_file()  # state went where --data-dir said
    assert (data / "outbox.sqlite3").is_file()


def check_story(out: str) -> None:
    assert re.search(r"^iron-tui ready: http://127\.0\.0\.1:\d+/v1 feed ws://", out, re.M)
    # The token and the web page's address with it (issue 17, defect 9).
    token = re.search(r"^iron-tui token: (\S+)$", out, re.M)
    assert token is not None
    assert re.search(rf"^iron-tui dashboard: http://127\.0\.0\.1:\d+/dashboard#token={re.escape(token.group(1))}$",
                     out, re.M)
    # Both providers, through the request log lines.
    assert re.search(r" openai gpt-4o-mini 200 .*\$0\.\d+", out)
    assert re.search(r" anthropic claude-sonnet-4-5-\d+ 200 .*\$0\.\d+", out)
    # OpenAI streaming, and a Claude call through the OpenAI SDK that was translated (streaming too).
    assert re.search(r" openai gpt-4o-mini 200 .*\[stream[ \]]", out)
    assert re.search(r" anthropic claude-haiku-4-5-\d+ 200 .*\[stream openai→anthropic[ \]]", out)
    # A tool call round trip, an upstream error, and the budget refusing an oversized request.
    assert re.search(r"model called get_weather\(\{.*\"city\"", out)
    assert re.search(r" openai gpt-4o-mini 429 .* error: Rate limit", out)
    assert "caught openai.RateLimitError (HTTP 429)" in out
    assert re.search(r" 402 .* error: Iron Cage insufficient budget", out)
    # A request fitted to what is left of the budget: forwarded with a lowered cap.
    assert re.search(r" openai gpt-4o-mini 200 .*capped by budget: max_tokens=\d+", out)
    assert re.search(r"capped by budget to \d+ output tokens \(x-iron-max-tokens\); finish_reason 'length'", out)
    # A local model (no key, $0), and a fallback from an overloaded model to it.
    assert re.search(r" local qwen2\.5-coder 200 .*\$0\.000000 \[as=local/qwen2\.5-coder", out)
    assert re.search(r" local qwen2\.5-coder 200 .*\[as=gpt-4\.1 .*tries: openai/gpt-4\.1 503, .*"
                     r"local/qwen2\.5-coder 200", out)
    # Spend crosses the 80 % warning.
    assert re.search(r"budget warning: \$0\.0\d+ of \$0\.02 spent \((8\d|9\d)%\)", out)


def check_summary(out: str) -> None:
    calls = re.search(r"summary: (\d+) calls: anthropic (\d+), local (\d+), openai (\d+) \((\d+) failed or "
                      r"refused\); (\d+) translated", out)
    assert calls, out[-2000:]
    total, anthropic, local, openai_calls, failed, translated = map(int, calls.groups())
    assert total == anthropic + local + openai_calls and anthropic >= 2 and openai_calls >= 4 and local == 2
    assert "1 served by a fallback" in out
    assert failed == 2 and translated == 1  # the 429 and the 402
    assert total == len(re.findall(r"^\S+Z req_\w+ ", out, re.M))  # one log line per call
    spend = re.search(r"summary: spend \$(\d+\.\d+) of \$(\d+\.\d+) budget \((\d+)%\)", out)
    assert spend and float(spend.group(2)) == DEMO_BUDGET_USD
    assert 0.8 * DEMO_BUDGET_USD <= float(spend.group(1)) <= DEMO_BUDGET_USD
    assert "summary: budget alerts: warning (the 80% threshold" in out
    synced = re.search(r"summary: (\d+) analytics events synced to the control server(.*)$", out, re.M)
    assert synced and int(synced.group(1)) == total and synced.group(2) == ""  # every call, none pending


def test_demo_bad_option_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        demo_main(["--speed", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--speed must be greater than 0" in err


def test_demo_port_in_use_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code = demo_main(["--no-ui", "--port", str(port), "--data-dir", str(tmp_path / "d")])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err and "try --port 0" in err
    assert "Traceback" not in out + err
