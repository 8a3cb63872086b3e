"""Fuzz the whole gateway over real HTTP: whatever body reaches an LLM route — for a model served natively,
one served through translation, or no known model — the answer is in the caller's API shape, never a 500,
a traceback or a hang, holds no provider key, and the call leaves no budget reserved.

A real `LlmRouter` (its own thread and loop) in front of the provider simulator (its own process);
bodies are JSON built from the dialects' vocabulary (as in test_translators_fuzz.py), plus bodies that
are not objects and bytes that are not JSON. Fixed seed, CI-sized (IRON_FUZZ_EXAMPLES runs longer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from iron_tui import LlmRouter
from tests.conftest import ANTHROPIC_KEY, OPENAI_KEY
from tests.test_translators_fuzz import REQUEST, json_values, objects

EXAMPLES = int(os.environ.get("IRON_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("IRON_FUZZ_RANDOM") != "1",
                suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate, Phase.shrink))

ROUTES = ["/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/completions", "/v1/embeddings",
          "/anthropic/v1/messages", "/openai/v1/chat/completions"]
MODELS = ["gpt-4o-mini", "claude-haiku-4-5", "text-embedding-3-small", "no-such-model", "", "bench/x"]

# Requests close to what clients send, a field or two off: these get past the first checks and reach the
# translators, admission, the upstream and the relay. Each route gets bodies of its own API, and of the
# others (an SDK pointed at the wrong path).
texts = st.sampled_from(["hi", "", "Say hello. [[sim:slow_stream=1]]", "x" * 300, "é☃\u0000"]) | st.text(max_size=8)
counts = st.integers(1, 200) | st.integers(1, 200) | st.none() | st.integers(-2, 70_000) | st.sampled_from(
    [0.5, 1e308, True, "16"])
reals = st.none() | st.sampled_from([0, 0.7, 1, 2.5, -1.0, float("inf")]) | texts
models = st.sampled_from(["gpt-4o-mini", "claude-haiku-4-5"]) | st.sampled_from(MODELS)
chat_body = st.fixed_dictionaries(
    {"model": models, "messages": st.lists(st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "tool", "developer"]),
         "content": texts | texts | json_values}), min_size=1, max_size=3)},
    optional={"max_tokens": counts, "max_completion_tokens": counts, "stream": st.booleans(), "temperature": reals,
              "n": counts, "tools": st.lists(objects, max_size=2), "tool_choice": json_values,
              "stream_options": json_values, "response_format": json_values, "reasoning_effort": texts,
              "logit_bias": json_values, "stop": json_values})
messages_body = st.fixed_dictionaries(
    {"model": models, "max_tokens": st.integers(1, 300) | st.integers(1, 300) | counts, "messages": st.lists(st.fixed_dictionaries(
        {"role": st.just("user") | st.sampled_from(["user", "assistant"]),
         "content": texts | texts | st.lists(objects, max_size=2)}), min_size=1, max_size=3)},
    optional={"system": texts | json_values, "stream": st.booleans(), "tools": st.lists(objects, max_size=2),
              "thinking": json_values, "tool_choice": json_values, "temperature": reals, "top_k": counts,
              "metadata": json_values})
responses_body = st.fixed_dictionaries(
    {"model": models, "input": texts | texts | st.lists(objects, max_size=3)},
    optional={"instructions": texts | json_values, "stream": st.booleans(), "max_output_tokens": counts,
              "tools": st.lists(objects, max_size=2), "reasoning": json_values, "text": json_values,
              "previous_response_id": texts, "store": st.booleans(), "tool_choice": json_values})
completions_body = st.fixed_dictionaries({"model": models, "prompt": texts | json_values},
                                         optional={"max_tokens": counts, "stream": st.booleans(), "n": counts,
                                                   "best_of": counts, "logprobs": counts})
embeddings_body = st.fixed_dictionaries({"model": models, "input": texts | json_values},
                                        optional={"dimensions": counts, "encoding_format": texts})
OWN = {"/v1/chat/completions": chat_body, "/openai/v1/chat/completions": chat_body, "/v1/messages": messages_body,
       "/anthropic/v1/messages": messages_body, "/v1/responses": responses_body,
       "/v1/completions": completions_body, "/v1/embeddings": embeddings_body}
any_api = chat_body | messages_body | responses_body | completions_body | embeddings_body


def _encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


routes_and_bodies = st.one_of(
    # (three in four of its own API; `|` would flatten the alternatives into one uniform choice)
    *(st.tuples(st.just(route), st.integers(0, 3).flatmap(lambda i, own=own: own if i else any_api).map(_encoded))
      for route, own in OWN.items()),
    st.tuples(st.sampled_from(ROUTES), st.tuples(st.sampled_from(MODELS), REQUEST).map(
        lambda mb: _encoded({**mb[1], "model": mb[0]}))),
    st.tuples(st.sampled_from(ROUTES), json_values.map(_encoded) | st.binary(max_size=64)),
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LlmRouter, httpx.Client]]:
    sim = subprocess.Popen([sys.executable, "-m", "iron_tui.sim", "--port", "0"], stdout=subprocess.PIPE,
                           text=True, cwd=Path(__file__).resolve().parents[1])
    assert sim.stdout is not None
    sim_url = sim.stdout.readline().split()[2]
    router = LlmRouter(provider_keys={"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY}, openai_base_url=sim_url,
                       anthropic_base_url=sim_url, data_dir=tmp_path_factory.mktemp("fuzz"), budget=50.0)
    client = httpx.Client(base_url=router.base_url.removesuffix("/v1"), timeout=60.0)  # (a hang guard)
    try:
        yield router, client
    finally:
        client.close()
        router.stop()
        sim.terminate()
        sim.wait(10)


def _error_message(route: str, body: Any) -> str:
    """The error's message, checked to be in the route's API shape."""
    if route.endswith("/messages"):
        assert isinstance(body, dict) and body.get("type") == "error", body
        err = body["error"]
        assert isinstance(err, dict) and isinstance(err.get("type"), str), body
    else:
        assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
        err = body["error"]
    assert isinstance(err.get("message"), str) and err["message"], body
    return str(err["message"])


@FUZZ
@given(route_and_body=routes_and_bodies)
def test_any_body_on_any_route_is_answered_in_the_callers_shape(gateway: tuple[LlmRouter, httpx.Client],
                                                                route_and_body: tuple[str, bytes]) -> None:
    router, client = gateway
    route, raw = route_and_body
    r = client.post(route, content=raw, headers={"authorization": f"Bearer {router.api_key}",
                                                  "content-type": "application/json"})
    text = r.content
    assert OPENAI_KEY.encode() not in text and ANTHROPIC_KEY.encode() not in text
    assert r.status_code != 500 and r.status_code < 600, (r.status_code, text[:500])
    if r.status_code >= 400:
        message = _error_message(route, r.json())
        assert "Traceback" not in message
    elif r.headers.get("content-type", "").startswith("text/event-stream"):
        assert text.rstrip().endswith((b"[DONE]", b"}")), text[-300:]  # the stream ended properly
    else:
        assert isinstance(r.json(), dict)
    # The reservation of the call is settled or released once its answer is out (a short hang guard:
    # the record is finished by the handler that sent the answer).
    engine = router._live()
    deadline = time.monotonic() + 10
    while engine.ledger.reserved and time.monotonic() < deadline:
        time.sleep(0.005)
    assert engine.ledger.reserved == 0
