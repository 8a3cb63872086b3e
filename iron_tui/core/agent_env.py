"""What the agent process is given: its argv (command parsing) and its environment (proxy wiring).

Command rule. An argv list is run as is, never through a shell. A command *string* is split with
`shlex.split` and run directly, unless it contains shell syntax outside single quotes -- a pipe or
redirection (`| < >`), a command separator or background (`; &`, so `&&` and `||` too), a
subshell or substitution (`( )`, backquotes, `$VAR`/`$(...)`), a glob (`* ? [`), `~` at the
start of a word, a comment (`#` at the start of a word), a newline, a leading `NAME=value`
assignment, or a shell builtin/keyword as its first word (`cd`, `export`, `source`, `if`, ...).
Then it runs as `/bin/sh -c STRING`. Quoting and backslash escapes are honoured when deciding, so
`python -c "print('a;b')"` still runs without a shell.

Environment rule. The child gets a copy of our environment *minus* every known LLM credential
variable (`PROVIDER_SECRET_VARS`; they are the whole reason iron-tui exists) and every variable whose
value holds a configured provider key, then the proxy wiring: OpenAI and Anthropic SDKs, the Codex
CLI and Claude Code configured purely from the environment talk to the local proxy with the local
token (plus what Claude Code needs to stay on the proxy and off the network: `claude_code_environment`).
Other `*_API_KEY` variables (search tools, databases, ...) are left alone: the agent may need
them. Cloud credentials that are not LLM-specific (AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS)
are left alone too.
A preset's own `env` is applied last and wins over everything: it is configuration the user wrote
explicitly, so it may repoint a base URL or even set a key on purpose; nothing is inherited
implicitly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote as percent_encode
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ProxyWiring:
    """What the child is told about the proxy."""

    base_url: str  # "http://127.0.0.1:PORT" (no /v1)
    token: str  # the local client token, NOT a provider key
    otel_traces_endpoint: str | None = None  # where iron-tui sends spans, when it traces
    otel_service_name: str = "iron-tui-agent"

    def __repr__(self) -> str:  # the token is a credential too: never print it whole
        return f"ProxyWiring(base_url={self.base_url!r}, token='...{self.token[-4:]}')"


# --- LLM credentials an agent must not inherit (documented in docs/security.md; keep both in step) ---
# Providers whose `<NAME>_API_KEY` is an LLM provider key.
_PROVIDERS = (
    "OPENAI", "AZURE_OPENAI", "AZURE", "AZURE_AI", "ANTHROPIC", "CLAUDE", "GEMINI", "GOOGLE",
    "GOOGLE_GENERATIVE_AI", "VERTEX", "MISTRAL", "CODESTRAL", "GROQ", "COHERE", "CO", "DEEPSEEK",
    "TOGETHER", "TOGETHERAI", "TOGETHER_AI", "FIREWORKS", "FIREWORKS_AI", "XAI", "GROK", "OPENROUTER",
    "PERPLEXITY", "PPLX", "VOYAGE", "AI21", "CEREBRAS", "NVIDIA", "NVIDIA_NIM", "HUGGINGFACE", "HF",
    "REPLICATE", "ANYSCALE", "DEEPINFRA", "MOONSHOT", "DASHSCOPE", "ZHIPU", "ZHIPUAI", "SAMBANOVA",
    "NEBIUS", "NOVITA", "HYPERBOLIC", "LITELLM", "PORTKEY", "OLLAMA",
)
# Other variables that carry an LLM credential.
_OTHER_SECRETS = (
    "CODEX_API_KEY",  # Codex CLI (`codex exec`)
    "CLAUDE_CODE_OAUTH_TOKEN",  # Claude Code's subscription login
    "ANTHROPIC_AUTH_TOKEN",  # the Anthropic SDK and Claude Code send it as a Bearer token
    "ANTHROPIC_ADMIN_KEY",
    "OPENAI_ADMIN_KEY",
    "AZURE_OPENAI_KEY",  # older Azure OpenAI samples
    "AZURE_OPENAI_AD_TOKEN",  # Entra ID token for Azure OpenAI
    "AZURE_INFERENCE_CREDENTIAL",  # azure-ai-inference
    "AWS_BEARER_TOKEN_BEDROCK",  # Bedrock API keys
    "GOOGLE_GENAI_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACEHUB_API_TOKEN",  # LangChain
    "REPLICATE_API_TOKEN",
    "DEEPINFRA_TOKEN",
    "LITELLM_MASTER_KEY",
    "IC_TOKEN",  # the Iron Cage token (server mode) / iron-tui's own client token option
    "IC_SERVER",  # with an IC token, the server hands out provider keys: the agent needs neither
)
PROVIDER_SECRET_VARS: frozenset[str] = frozenset(
    {f"{p}_API_KEY" for p in _PROVIDERS} | set(_OTHER_SECRETS)
)
# Tools that read their own variable for the key get the agent's local token there instead. Not
# ANTHROPIC_AUTH_TOKEN (removed like every credential): with it beside ANTHROPIC_API_KEY the Anthropic
# SDK warns that both are set and Claude Code reports an auth conflict; both read ANTHROPIC_API_KEY.
_TOKEN_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CODEX_API_KEY")
_MIN_SECRET = 8  # shorter "secrets" would match innocent values (redact.py registers the same)


def is_provider_secret(name: str) -> bool:
    # Case-insensitive: some config loaders (pydantic-settings) read env names case-insensitively.
    return name.upper() in PROVIDER_SECRET_VARS


def child_environment(
    base: Mapping[str, str],
    wiring: ProxyWiring | None,
    agent_id: str,
    preset_env: Mapping[str, str] | None = None,
    *,
    secrets: Iterable[str] = (),
) -> dict[str, str]:
    """The agent's environment: `base` minus LLM credentials, plus wiring, plus `preset_env`.

    Removed: every variable named in `PROVIDER_SECRET_VARS`, and every variable whose value holds
    one of `secrets` (the configured provider keys), whatever its name."""
    held = [s for s in secrets if len(s) >= _MIN_SECRET]
    env = {k: v for k, v in base.items()
           if not is_provider_secret(k) and not any(s in v for s in held)}
    if wiring is not None:
        base_url = wiring.base_url.rstrip("/")
        # `<token>.<agent_id>`: the proxy accepts it as the token and attributes the call to this
        # agent, since unmodified SDKs cannot be told to send an agent header.
        token = f"{wiring.token}.{agent_id}"
        env.update(dict.fromkeys(_TOKEN_VARS, token))
        env.update(
            OPENAI_BASE_URL=base_url + "/v1",
            OPENAI_API_BASE=base_url + "/v1",  # pre-1.0 openai and LangChain read this name
            ANTHROPIC_BASE_URL=base_url,  # the Anthropic SDK appends /v1 itself
            ANTHROPIC_API_BASE=base_url,  # LiteLLM (and so aider) reads this name first
            IRON_PROXY_URL=base_url,
        )
        _bypass_http_proxy(env, base_url)
        claude_code_environment(env)
        env.update(otel_environment(wiring, agent_id, env))
    env["IRON_AGENT_ID"] = agent_id
    env["PYTHONUNBUFFERED"] = "1"  # so a Python agent's prints arrive live, not at exit
    if preset_env:
        env.update({str(k): str(v) for k, v in preset_env.items()})  # TOML may give ints/bools
    return env


def otel_environment(wiring: ProxyWiring, agent_id: str, env: Mapping[str, str]) -> dict[str, str]:
    """OTEL_* variables that send an instrumented agent's own spans to iron-tui's collector, under
    its own service name, so its traces and iron-tui's LLM spans (which continue the `traceparent`
    the agent's HTTP instrumentation sends) form one trace. Nothing when iron-tui does not trace."""
    if wiring.otel_traces_endpoint is None:
        return {}
    attrs = env.get("OTEL_RESOURCE_ATTRIBUTES", "").strip().strip(",")
    return {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": wiring.otel_traces_endpoint,
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": wiring.otel_service_name,
        "OTEL_RESOURCE_ATTRIBUTES": (attrs + "," if attrs else "") + f"iron.agent.id={percent_encode(agent_id, safe='')}",
    }


def _bypass_http_proxy(env: dict[str, str], base_url: str) -> None:
    """Keep a corporate HTTP(S)_PROXY from intercepting calls to our local port."""
    host = urlsplit(base_url).hostname
    if not host:
        return
    for name in ("NO_PROXY", "no_proxy"):
        entries = [e.strip() for e in env.get(name, "").split(",") if e.strip()]
        for extra in (host, "localhost", "127.0.0.1"):
            if extra not in entries:
                entries.append(extra)
        env[name] = ",".join(entries)


# --- Claude Code ----------------------------------------------------------------------------------

# Switches that send Claude Code to a cloud provider instead of ANTHROPIC_BASE_URL, with the user's
# own cloud credentials: unmetered, unbudgeted calls that would bypass iron-tui.
CLAUDE_CODE_PROVIDER_SWITCHES = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY")


def claude_code_environment(env: dict[str, str]) -> None:
    """What Claude Code needs beyond the standard variables to run headless against iron-tui.

    Applied to every launched agent (a script may start Claude Code; other programs ignore these):
    - the provider switches above are removed, so its calls go to ANTHROPIC_BASE_URL;
    - CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 unless the user set it: no telemetry, error reports,
      auto-updater, release notes or MCP registry fetches to api.anthropic.com -- with it a `claude -p`
      run opens no connection but iron-tui's (checked with strace), without it it resolves and calls
      api.anthropic.com, which hangs or fails where there is no network.
    Nothing else is needed: with ANTHROPIC_API_KEY set, print mode (`-p`) asks for no login, and it
    runs even with an unwritable HOME. Its settings file can still override the environment; the
    command-line part is `_claude_arguments`.
    """
    for name in CLAUDE_CODE_PROVIDER_SWITCHES:
        env.pop(name, None)
    env.setdefault("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")


def _claude_arguments(argv: list[str], wiring: ProxyWiring) -> list[str]:
    """Claude Code applies its settings files' `env` over the process environment, so a user whose
    ~/.claude/settings.json sets ANTHROPIC_BASE_URL (another gateway) or CLAUDE_CODE_USE_BEDROCK would
    bypass iron-tui. `--settings` (which outranks the user's and the project's files) puts them back.
    Only non-secret values go on the command line: the token stays in the environment."""
    if any(a == "--settings" or a.startswith("--settings=") for a in argv[1:]):
        return argv
    env = {"ANTHROPIC_BASE_URL": wiring.base_url.rstrip("/"), **dict.fromkeys(CLAUDE_CODE_PROVIDER_SWITCHES, "0")}
    return [argv[0], "--settings", json.dumps({"env": env}, separators=(",", ":")), *argv[1:]]


# --- per-agent arguments -------------------------------------------------------------------------


def _codex_arguments(argv: list[str], wiring: ProxyWiring) -> list[str]:
    """Codex CLI reads no OPENAI_BASE_URL: it gets `-c openai_base_url=<proxy>/v1` before its
    subcommand, so its built-in OpenAI provider calls iron-tui with CODEX_API_KEY (the agent's local
    token). A command that already sets openai_base_url is left as it is."""
    if any("openai_base_url" in a for a in argv[1:]):
        return argv
    base = wiring.base_url.rstrip("/") + "/v1"
    return [argv[0], "-c", f'openai_base_url="{base}"', *argv[1:]]


_KNOWN_PROGRAMS = {"codex": _codex_arguments, "claude": _claude_arguments}


def agent_arguments(argv: list[str], wiring: ProxyWiring) -> list[str]:
    """`argv` plus what a known agent needs because it ignores (or overrides) the standard variables:
    Codex CLI and Claude Code, by program name. A command run through a shell is not passed here."""
    if not argv:
        return argv
    name = os.path.basename(argv[0])
    add = _KNOWN_PROGRAMS.get(name.removesuffix(".exe"))
    return add(argv, wiring) if add is not None else argv


# --- command parsing ----------------------------------------------------------------------------

_SHELL_CHARS = frozenset("|&;<>()`$*?[\n")
_SHELL_WORDS = frozenset(
    "cd export source . exec eval set unset alias if then else elif fi for while until do done case "
    "esac function select time ulimit umask trap ! { }".split()
)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def needs_shell(command: str) -> bool:
    """True when `command` uses shell syntax (see the module docstring for the rule)."""
    quote: str | None = None
    word_start = True
    i = 0
    while i < len(command):
        c = command[i]
        if quote == "'":
            if c == "'":
                quote = None
        elif quote == '"':
            if c == "\\":
                i += 1
            elif c == '"':
                quote = None
            elif c in "$`":  # still expanded inside double quotes
                return True
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c in _SHELL_CHARS or (word_start and c in "~#"):
            return True
        word_start = quote is None and c in " \t"
        i += 1
    try:
        words = shlex.split(command)
    except ValueError:
        return False  # unbalanced quotes: command_argv reports it
    return bool(words) and (words[0] in _SHELL_WORDS or _ASSIGNMENT.match(words[0]) is not None)


def command_argv(command: str | list[str] | tuple[str, ...]) -> tuple[list[str], bool]:
    """`(argv, via_shell)` for a preset's command. Raises ValueError for an empty/unparsable one."""
    if isinstance(command, (list, tuple)):
        argv = [str(a) for a in command]
        if not argv or not argv[0]:
            raise ValueError("empty command")
        return argv, False
    text = command.strip()
    if not text:
        raise ValueError("empty command")
    if needs_shell(text):
        return ["/bin/sh", "-c", text], True
    try:
        argv = shlex.split(text)
    except ValueError as exc:  # e.g. "No closing quotation"
        raise ValueError(f"cannot parse command {text!r}: {exc}") from None
    if not argv:
        raise ValueError("empty command")
    return argv, False


def describe_command(command: str | list[str] | tuple[str, ...], limit: int = 60) -> str:
    """A short display name for an ad-hoc command."""
    text = command if isinstance(command, str) else shlex.join(command)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def default_cwd(cwd: str | None) -> str | None:
    return None if not cwd else os.path.expanduser(cwd)
