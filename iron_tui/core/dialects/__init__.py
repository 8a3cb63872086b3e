"""Dialect pairs: one module of pure request/response/stream functions per (client API, provider API)."""
