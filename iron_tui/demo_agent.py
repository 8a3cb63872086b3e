"""The agent `iron-tui demo` launches: a short, scripted tour of what iron-tui does.

It uses the official `openai` and `anthropic` SDKs configured ONLY by the environment iron-tui gives
every agent (OPENAI_BASE_URL / OPENAI_API_KEY / ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY), exactly as a
real agent would, and prints one narrative line per step. The simulated providers understand
`[[sim:...]]` directives in the prompt (longer replies, tool calls, errors), which is how the script
produces each situation on demand.

    python -m iron_tui.demo_agent [--budget USD] [--pause SECONDS]

`--budget` is only used to decide how many "long report" calls to make (until the spend reported by
iron-tui in the `x-iron-cost-usd` header passes 85 % of it); iron-tui enforces the real limit.
Exit status 0 when every step behaved as expected, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import threading
import time
from typing import Any

OPENAI_MODEL = "gpt-4o-mini"
OPENAI_BIG_MODEL = "gpt-4o"
CLAUDE_FAST = "claude-haiku-4-5-20251001"
CLAUDE_MODEL = "claude-sonnet-4-5-20250929"
REPORT_TARGET = 0.85  # stop the long-report loop at this share of the budget (the warning is at 80 %)
MAX_REPORTS = 16

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
        },
    },
}


class _Import:
    """Import a module on a background thread; `result()` returns it or raises the ImportError."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"import-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._module = importlib.import_module(self._name)
        except BaseException as exc:
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._module


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def short(text: str | None, limit: int = 48) -> str:
    text = " ".join((text or "").split())
    return f"“{text if len(text) <= limit else text[: limit - 1] + '…'}”"


class Tour:
    def __init__(self, budget: float | None, pause: float) -> None:
        from openai import OpenAI

        # The anthropic SDK takes seconds to import; load it while the OpenAI steps run.
        self._anthropic_loader = _Import("anthropic")
        # No arguments on purpose: base URLs and the (local) key come from the environment only.
        self.openai = OpenAI()
        self._anthropic: Any = None
        self.budget = budget
        self.pause = pause
        self.spent = 0.0  # as reported by iron-tui per non-streamed call
        self.step = 0

    @property
    def anthropic(self) -> Any:
        if self._anthropic is None:
            self._anthropic = self._anthropic_loader.result().Anthropic()  # environment only, as above
        return self._anthropic

    def wait(self) -> None:
        if self.pause > 0:
            time.sleep(self.pause)

    def next(self, title: str) -> None:
        self.wait()
        self.step += 1
        say(f"step {self.step}: {title}")

    def note_cost(self, headers: Any) -> str:
        cost = headers.get("x-iron-cost-usd")
        try:
            value = float(cost)
        except (TypeError, ValueError):
            return "cost unknown"
        self.spent += value
        return f"${value:.5f}"

    # --- the steps ----------------------------------------------------------------------------

    def openai_chat(self) -> None:
        self.next(f"OpenAI chat completion ({OPENAI_MODEL}) with the openai SDK")
        raw = self.openai.chat.completions.with_raw_response.create(
            model=OPENAI_MODEL, max_tokens=200,
            messages=[{"role": "user", "content": "Say hello to the iron-tui demo."}],
        )
        reply = raw.parse()
        usage = reply.usage
        tokens = f"{usage.prompt_tokens} in / {usage.completion_tokens} out" if usage else "no usage"
        say(f"  → {short(reply.choices[0].message.content)} ({tokens} tokens, {self.note_cost(raw.headers)})")

    def openai_stream(self) -> None:
        self.next(f"OpenAI streaming ({OPENAI_MODEL}, stream=True): chunks arrive as they are generated")
        stream = self.openai.chat.completions.create(
            model=OPENAI_MODEL, max_tokens=200, stream=True,
            messages=[{"role": "user", "content": "Stream a short greeting. [[sim:words=24]]"}],
        )
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
        say(f"  → {len(pieces)} chunks: {short(''.join(pieces))}")

    def claude_via_openai(self) -> None:
        self.next(f"Claude ({CLAUDE_FAST}) through the OpenAI SDK: iron-tui translates to Anthropic and back")
        stream = self.openai.chat.completions.create(
            model=CLAUDE_FAST, max_tokens=200, stream=True,
            messages=[
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Describe iron-tui in one line. [[sim:words=20]]"},
            ],
        )
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
        say(f"  → translated stream, {len(pieces)} OpenAI-format chunks: {short(''.join(pieces))}")

    def anthropic_native(self) -> None:
        self.next(f"Native Anthropic Messages API ({CLAUDE_MODEL}) with the anthropic SDK")
        raw = self.anthropic.messages.with_raw_response.create(
            model=CLAUDE_MODEL, max_tokens=200,
            messages=[{"role": "user", "content": "Summarise the plan. [[sim:words=30]]"}],
        )
        msg = raw.parse()
        text = "".join(b.text for b in msg.content if b.type == "text")
        say(f"  → {short(text)} ({msg.usage.input_tokens} in / {msg.usage.output_tokens} out tokens, "
            f"{self.note_cost(raw.headers)})")

    def tool_round_trip(self) -> None:
        self.next("Tool call round trip: the model asks for get_weather, the agent answers, the model replies")
        messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris? [[sim:tools=1]]"}]
        first = self.openai.chat.completions.create(
            model=OPENAI_MODEL, max_tokens=200, messages=messages, tools=[WEATHER_TOOL],
        )
        calls = first.choices[0].message.tool_calls or []
        if not calls:
            raise RuntimeError("the model did not call the tool")
        call = calls[0]
        fn = getattr(call, "function", None)
        name = getattr(fn, "name", "?")
        args = getattr(fn, "arguments", "{}")
        say(f"  → model called {name}({args})")
        result = {"city": json.loads(args or "{}").get("city", "?"), "temperature_c": 21, "sky": "clear"}
        messages.append(first.choices[0].message.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
        second = self.openai.chat.completions.create(
            model=OPENAI_MODEL, max_tokens=200, messages=messages, tools=[WEATHER_TOOL],
        )
        say(f"  → agent returned {json.dumps(result)}; model answered {short(second.choices[0].message.content)}")

    def local_model(self) -> None:
        self.next("A local model (local/qwen2.5-coder, an Ollama-like server on this machine): no key, $0")
        raw = self.openai.chat.completions.with_raw_response.create(
            model="local/qwen2.5-coder", max_tokens=100,
            messages=[{"role": "user", "content": "Write a one-line docstring. [[sim:words=12]]"}],
        )
        reply = raw.parse()
        say(f"  → {short(reply.choices[0].message.content)} ({self.note_cost(raw.headers)})")

    def fallback(self) -> None:
        self.next("A fallback: gpt-4.1 is overloaded (503); iron-tui retries, then falls back to the local model")
        reply = self.openai.chat.completions.create(
            model="gpt-4.1", max_tokens=100,
            messages=[{"role": "user", "content": "Refactor this loop. [[sim:words=16]]"}],
        )
        say(f"  → answered by {reply.model} after gpt-4.1 failed: {short(reply.choices[0].message.content)}")

    def upstream_error(self) -> None:
        import openai

        self.next("An upstream error: the provider keeps answering 429 (rate limited); iron-tui retries, then "
                  "relays it")
        try:
            self.openai.with_options(max_retries=0).chat.completions.create(
                model=OPENAI_MODEL, max_tokens=50,
                messages=[{"role": "user", "content": "This one fails. [[sim:error=429]]"}],
            )
        except openai.RateLimitError as exc:
            say(f"  → caught openai.RateLimitError (HTTP {exc.status_code}); the failed call is recorded too")
            return
        raise RuntimeError("expected a 429 from the simulated provider")

    def long_reports(self) -> None:
        import anthropic
        import openai

        if self.budget is None:
            return
        target = REPORT_TARGET * self.budget
        self.next(f"Costlier work: long reports from {OPENAI_BIG_MODEL} and {CLAUDE_MODEL} until spend passes "
                  f"{REPORT_TARGET:.0%} of the ${self.budget:.2f} budget (iron-tui warns at 80%)")
        for i in range(1, MAX_REPORTS + 1):
            if self.spent >= target:
                break
            self.wait()
            prompt = f"Write section {i} of the report. [[sim:words=150]]"
            try:
                if i % 2:
                    model = OPENAI_BIG_MODEL
                    raw: Any = self.openai.with_options(max_retries=0).chat.completions.with_raw_response.create(
                        model=model, max_tokens=160, messages=[{"role": "user", "content": prompt}],
                    )
                else:
                    model = CLAUDE_MODEL
                    raw = self.anthropic.with_options(max_retries=0).messages.with_raw_response.create(
                        model=model, max_tokens=160, messages=[{"role": "user", "content": prompt}],
                    )
            except (openai.APIStatusError, anthropic.APIStatusError) as exc:
                say(f"  → section {i} refused by iron-tui (HTTP {exc.status_code}): the budget is nearly spent")
                return
            cost = self.note_cost(raw.headers)
            say(f"  → section {i} by {model}: {cost} (reported so far ${self.spent:.5f} of ${self.budget:.2f})")

    def fit_to_budget(self) -> None:
        if self.budget is None:
            return
        self.next(f"A request that asks for more than the budget has left ({OPENAI_MODEL}, max_tokens=16000): "
                  "iron-tui lowers its output cap to what the budget pays for, and forwards it")
        raw = self.openai.with_options(max_retries=0).chat.completions.with_raw_response.create(
            model=OPENAI_MODEL, max_tokens=16000,
            messages=[{"role": "user", "content": "Write a long appendix. [[sim:words=20000]]"}],
        )
        reply = raw.parse()
        cap = raw.headers.get("x-iron-max-tokens")
        say(f"  → capped by budget to {cap} output tokens (x-iron-max-tokens); finish_reason "
            f"{reply.choices[0].finish_reason!r}; {self.note_cost(raw.headers)}")

    def over_budget(self) -> None:
        import openai

        if self.budget is None:
            return
        self.next("A request whose worst case does not fit in what is left of the budget")
        try:
            self.openai.with_options(max_retries=0).chat.completions.create(
                model=OPENAI_BIG_MODEL, max_tokens=16000,
                messages=[{"role": "user", "content": "Write the whole book. [[sim:words=5000]]"}],
            )
        except openai.APIStatusError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            code = body.get("code") or (body.get("error") or {}).get("code")
            say(f"  → refused by iron-tui before reaching the provider: HTTP {exc.status_code} {code}")
            return
        raise RuntimeError("expected iron-tui to refuse the request (402)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m iron_tui.demo_agent", description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=None, help="the budget iron-tui enforces (USD)")
    ap.add_argument("--pause", type=float, default=0.0, help="seconds to pause between steps")
    args = ap.parse_args(argv)
    try:
        tour = Tour(args.budget, args.pause)
    except ImportError as exc:
        say(f"the demo agent needs the openai and anthropic SDKs: {exc} (pip install openai anthropic)")
        return 1
    say("agent started; the SDKs only know the local proxy URL and a local token, no provider key")
    steps = (tour.openai_chat, tour.openai_stream, tour.claude_via_openai, tour.anthropic_native,
             tour.tool_round_trip, tour.local_model, tour.fallback, tour.upstream_error, tour.long_reports,
             tour.fit_to_budget, tour.over_budget)
    failed = 0
    for step in steps:
        try:
            step()
        except Exception as exc:  # one broken step must not hide the rest of the tour
            failed += 1
            say(f"  ✗ step failed: {type(exc).__name__}: {exc}")
    tour.wait()
    say("all steps done" if not failed else f"{failed} step(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
