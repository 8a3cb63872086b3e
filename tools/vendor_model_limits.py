"""Regenerate iron_tui/core/model_limits.json from LiteLLM's model table (a maintenance script, not
run by iron-tui or its tests).

    pip download litellm --no-deps -d /tmp/litellm && unzip -o /tmp/litellm/litellm-*.whl \
        'litellm/model_prices_and_context_window_backup.json' -d /tmp/litellm
    python tools/vendor_model_limits.py /tmp/litellm/litellm/model_prices_and_context_window_backup.json 1.110.2

Only the two numbers iron-tui needs are kept (max input and max output tokens), for the providers
iron-tui routes to, under iron-tui's provider names.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

# LiteLLM's provider name → iron-tui's (DESIGN.md §7 presets).
PROVIDERS = {
    "openai": "openai", "text-completion-openai": "openai", "anthropic": "anthropic", "groq": "groq",
    "deepseek": "deepseek", "gemini": "gemini", "mistral": "mistral", "together_ai": "together",
    "xai": "xai", "openrouter": "openrouter",
}
MODES = {"chat", "responses", "completion", "embedding"}
OUT = Path(__file__).resolve().parent.parent / "iron_tui" / "core" / "model_limits.json"


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def main(src: str, version: str) -> None:
    table = json.loads(Path(src).read_text("utf-8"))
    models: dict[str, dict[str, list[int | None]]] = {}
    for name, spec in table.items():
        if not isinstance(spec, dict) or spec.get("mode") not in MODES:
            continue
        provider = PROVIDERS.get(str(spec.get("litellm_provider")))
        if provider is None:
            continue
        prefix = str(spec.get("litellm_provider")) + "/"
        model = name[len(prefix):] if name.startswith(prefix) else name
        max_in = _count(spec.get("max_input_tokens"))
        max_out = _count(spec.get("max_output_tokens"))
        if spec.get("mode") == "embedding":
            max_out = 0
        if max_in is None and max_out is None:
            continue
        models.setdefault(provider, {})[model.lower()] = [max_in, max_out]
    doc = {
        "source": f"LiteLLM {version}, model_prices_and_context_window_backup.json (MIT licence)",
        "extracted": datetime.now(tz=UTC).date().isoformat(),
        "fields": ["max_input_tokens", "max_output_tokens"],
        "models": {p: dict(sorted(m.items())) for p, m in sorted(models.items())},
    }
    OUT.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=False) + "\n", "utf-8")
    print(f"{OUT}: {sum(len(m) for m in models.values())} models")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
