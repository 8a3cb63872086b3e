"""Test agent: call chat.completions with the official SDK configured only by the environment."""

from openai import OpenAI

client = OpenAI()  # no arguments: the base URL and the key come from the environment only
reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
print("reply:", reply.choices[0].message.content)
