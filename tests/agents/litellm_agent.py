"""Test agent: LiteLLM — the library aider, and many other agents, call models through — configured only
by the environment iron-tui gives a launched agent (no api_base, no key)."""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download at import

import litellm

for model in ("openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"):
    reply = litellm.completion(model=model, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    print(f"{model}: {reply.choices[0].message.content}", flush=True)
stream = litellm.completion(model="anthropic/claude-haiku-4-5", max_tokens=50, stream=True,
                            messages=[{"role": "user", "content": "stream please"}])
print("streamed:", "".join(c.choices[0].delta.content or "" for c in stream), flush=True)
