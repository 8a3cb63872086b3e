"""Test agent: call messages.create with the official Anthropic SDK configured only by the environment."""

import logging

from anthropic import Anthropic

logging.basicConfig(level=logging.WARNING)  # the SDK's own warnings (e.g. about its credentials) show
client = Anthropic()  # no arguments: the base URL and the key come from the environment only
reply = client.messages.create(model="claude-sonnet-4-5", max_tokens=64,
                               messages=[{"role": "user", "content": "hi"}])
print("reply:", reply.content[0].text)
