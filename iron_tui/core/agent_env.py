"""What the agent process is given: its argv (command parsing) and its environment (proxy wiring).

Command rule. An argv list is run as is, never through a shell. A command *string* is split with
`shlex.split` and run directly, unless it contains shell syntax outside single quotes -- a pipe or
redirection (`| < >`), a command separator or background (`; &`, so `&&` and `||` too), a
subshell or substitution (`( )`, backquotes, `$VAR`/`$(...)`), a glob (`* ? [`), `~` at the
start of a word, a comment (`#` at the start of a word), a newline, a leading `NAME=value`
assignment, or a shell builtin/keyword as its first word (`cd`, `export`, `source`, `if`, ...).
Then it runs as `/bin/sh -c STRING`. Quoting and backslash escapes are honoured when deciding, so
`python -c "print('a;b')"` still runs without a shell.

Environment rule. The child gets a copy of our environment *minus* every known LLM provider key
(they are the whole reason iron-tui exists), then the proxy wiring: OpenAI and Anthropic SDKs
configured purely from the environment talk to the local proxy with the local token. Other
`*_API_KEY` variables (search tools, databases, ...) are left alone: the agent may need them.
A preset's own `env` is applied last and wins over everything: it is configuration the user wrote
explicitly, so it may repoint a base URL or even set a key on purpose; nothing is inherited
implicitly.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ProxyWiring:
    """What the child is told about the proxy."""

    base_url: str  # "http://127.0.0.1:PORT" (no /v1)
    token: str  # the local client token, NOT a provider key

    def __repr__(self) -> str:  # the token is a credential too: never print it whole
        return f"ProxyWiring(base_url={self.base_url!r}, token='...{self.token[-4:]}')"


# Providers whose `<NAME>_API_KEY` is an LLM provider key and must not reach the agent.
_PROVIDERS = (
    "OPENAI", "AZURE_OPENAI", "ANTHROPIC", "GEMINI", "GOOGLE", "VERTEX", "MISTRAL", "GROQ", "COHERE",
    "CO", "DEEPSEEK", "TOGETHER", "TOGETHERAI", "FIREWORKS", "XAI", "OPENROUTER", "PERPLEXITY", "PPLX",
    "VOYAGE", "AI21", "CEREBRAS", "NVIDIA", "HUGGINGFACE", "HF", "REPLICATE", "ANYSCALE", "DEEPINFRA",
    "MOONSHOT", "DASHSCOPE", "ZHIPU",
)
# Other credential variables the SDKs or iron-tui itself read.
_EXTRA_SECRETS = (
    "ANTHROPIC_AUTH_TOKEN",  # the Anthropic SDK sends it as a Bearer token
    "OPENAI_ADMIN_KEY",
    "IC_TOKEN",  # the Iron Cage token (server mode) / iron-tui's own client token option
    "IC_SERVER",  # with an IC token, the server hands out provider keys: the agent needs neither
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "REPLICATE_API_TOKEN",
)
PROVIDER_SECRET_VARS: frozenset[str] = frozenset(
    {f"{p}_API_KEY" for p in _PROVIDERS} | set(_EXTRA_SECRETS)
)


def is_provider_secret(name: str) -> bool:
    # Case-insensitive: some config loaders (pydantic-settings) read env names case-insensitively.
    return name.upper() in PROVIDER_SECRET_VARS


def child_environment(
    base: Mapping[str, str],
    wiring: ProxyWiring | None,
    agent_id: str,
    preset_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The agent's environment: `base` minus provider secrets, plus wiring, plus `preset_env`."""
    env = {k: v for k, v in base.items() if not is_provider_secret(k)}
    if wiring is not None:
        base_url = wiring.base_url.rstrip("/")
        # `<token>.<agent_id>`: the proxy accepts it as the token and attributes the call to this
        # agent, since unmodified SDKs cannot be told to send an agent header.
        token = f"{wiring.token}.{agent_id}"
        env.update(
            OPENAI_BASE_URL=base_url + "/v1",
            OPENAI_API_BASE=base_url + "/v1",  # pre-1.0 openai and LangChain read this name
            OPENAI_API_KEY=token,
            ANTHROPIC_BASE_URL=base_url,  # the Anthropic SDK appends /v1 itself
            ANTHROPIC_API_KEY=token,
            IRON_PROXY_URL=base_url,
        )
        _bypass_http_proxy(env, base_url)
    env["IRON_AGENT_ID"] = agent_id
    env["PYTHONUNBUFFERED"] = "1"  # so a Python agent's prints arrive live, not at exit
    if preset_env:
        env.update({str(k): str(v) for k, v in preset_env.items()})  # TOML may give ints/bools
    return env


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
