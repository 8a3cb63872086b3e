"""`LlmRouter`: the gateway for Python scripts, in three lines.

    with LlmRouter(provider_key="sk-...", budget=5.0) as router:
        client = OpenAI(base_url=router.base_url, api_key=router.api_key)

The engine runs on a background thread with its own event loop; the constructor returns only once the
port accepts connections, and raises (instead of hanging) when it cannot start.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from iron_tui.config import MAX_BUDGET_USD, ConfigError, Settings, provider_for_key
from iron_tui.config_loading import default_data_dir
from iron_tui.core.engine import Engine
from iron_tui.core.events import MICROS_PER_USD
from iron_tui.core.loop import new_event_loop

_START_TIMEOUT_S = 30.0


class LlmRouter:
    def __init__(
        self,
        api_key: str | None = None,
        server_url: str | None = None,
        cache_ttl_seconds: int | float = 300,
        budget: float | None = None,
        provider_key: str | None = None,
        *,
        port: int = 0,
        provider_keys: dict[str, str] | None = None,
        openai_base_url: str | None = None,
        anthropic_base_url: str | None = None,
        data_dir: str | Path | None = None,
        providers: dict[str, dict[str, Any]] | None = None,
        models: dict[str, str] | None = None,
        fallbacks: dict[str, list[str]] | None = None,
    ) -> None:
        keys = {k: v for k, v in (provider_keys or {}).items() if v}
        unknown = set(keys) - {"openai", "anthropic"}
        if unknown:
            raise ValueError(f"provider_keys: unknown provider(s) {sorted(unknown)}; use 'openai' and 'anthropic' "
                             "(other providers take their key from the variable their key_env names)")
        if not provider_key and not keys and not (api_key and server_url) and not providers:
            raise ValueError(
                "LlmRouter needs provider_key (direct mode), both api_key and server_url (server mode), "
                "or providers={...} (e.g. a local model server)"
            )
        if budget is not None and not 0 <= budget <= MAX_BUDGET_USD:  # NaN and inf fail this too
            raise ValueError(f"budget must be a number from 0 to {MAX_BUDGET_USD} (or None for unlimited)")
        values: dict[str, Any] = {
            "port": port,
            "token": api_key,
            "server_url": server_url,
            "cache_ttl_seconds": cache_ttl_seconds,
            "budget": budget,
            "provider_key": provider_key,
            "openai_key": keys.get("openai"),
            "anthropic_key": keys.get("anthropic"),
            "openai_base_url": openai_base_url,
            "anthropic_base_url": anthropic_base_url,
            "data_dir": Path(data_dir) if data_dir is not None else default_data_dir(),
            # The same tables as [providers], [models] and [fallbacks] in the config file.
            "providers": providers,
            "models": models,
            "fallbacks": fallbacks,
        }
        try:
            settings = Settings(**{k: v for k, v in values.items() if v is not None})
        except Exception as exc:  # pydantic ValidationError → the caller's ValueError
            raise ValueError(str(exc)) from None
        self._provider_hint = (
            provider_for_key(provider_key) if provider_key else (sorted(keys)[0] if keys else None)
        )
        self._engine: Engine | None = None
        self._loop = new_event_loop()
        self._ready: Future[Engine] = Future()
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(settings,), name="iron-tui-router", daemon=True)
        self._thread.start()
        try:
            self._engine = self._ready.result(timeout=_START_TIMEOUT_S)
        except BaseException as exc:
            self._shutdown_loop()
            self._stopped = True
            if isinstance(exc, ConfigError):
                raise ValueError(str(exc)) from None
            raise RuntimeError(f"LlmRouter failed to start: {exc}") from None
        # Never leave a background server behind at interpreter exit (flushes analytics too).
        self._finalizer = weakref.finalize(self, LlmRouter._atexit_stop, weakref.ref(self))
        atexit.register(self._finalizer)

    @staticmethod
    def _atexit_stop(ref: weakref.ref[LlmRouter]) -> None:
        router = ref()
        if router is not None:
            router.stop()

    def _run(self, settings: Settings) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main(settings))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def _main(self, settings: Settings) -> None:
        self._stop_event = asyncio.Event()
        try:
            engine = Engine(settings)
            await engine.start()
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(engine)
        await self._stop_event.wait()
        await engine.stop()

    def _shutdown_loop(self) -> None:
        if self._thread.is_alive():
            if hasattr(self, "_stop_event"):
                # The loop may be closing already (the engine failed to start and `_run` is ending):
                # then there is nothing to stop, and its "Event loop is closed" must not replace the
                # start error the caller gets.
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(timeout=30)

    # --- properties ------------------------------------------------------------------------------

    def _live(self) -> Engine:
        if self._stopped or self._engine is None:
            raise RuntimeError("Router is stopped")
        return self._engine

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL: http://127.0.0.1:PORT/v1 (the Anthropic SDK wants it without /v1)."""
        return self._live().openai_base_url

    @property
    def api_key(self) -> str:
        """The token clients present (never a provider key)."""
        return self._live().token

    @property
    def port(self) -> int:
        return self._live().port

    @property
    def provider(self) -> str:
        eng = self._live()
        if self._provider_hint:
            return self._provider_hint
        if eng.control is not None:
            control = eng.control

            async def ask() -> str:
                # On the engine's loop: the key cache is not shared with the caller's thread.
                cached = control.cached_providers()
                if cached:
                    return sorted(cached)[0]
                return str((await control.provider_key()).provider)

            try:
                return str(self._call(ask()))
            except Exception:
                return "unknown"
        return "unknown"

    @property
    def is_running(self) -> bool:
        return not self._stopped and self._engine is not None and self._thread.is_alive()

    @property
    def budget(self) -> float | None:
        if self._engine is None:
            return None
        limit = self._engine.ledger.limit
        return None if limit is None else limit / MICROS_PER_USD

    @property
    def budget_status(self) -> tuple[float, float] | None:
        """(spent_usd, limit_usd), or None when the budget is unlimited."""
        if self._engine is None:
            return None
        spent, limit = self._engine.ledger.status()
        if limit is None:
            return None
        return spent / MICROS_PER_USD, limit / MICROS_PER_USD

    def total_spent(self) -> float:
        if self._engine is None:
            return 0.0
        return self._engine.ledger.spent / MICROS_PER_USD

    def set_budget(self, usd: float | None) -> None:
        """Change the limit live; what was spent is kept. None removes the limit."""
        if usd is not None and not 0 <= usd <= MAX_BUDGET_USD:  # NaN and inf fail this too
            raise ValueError(f"budget must be a number from 0 to {MAX_BUDGET_USD} (or None for unlimited)")
        eng = self._live()

        async def apply() -> None:
            eng.set_budget(usd)

        self._call(apply())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    # --- lifecycle -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the proxy: finish in-flight calls, flush analytics, return the budget lease. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._shutdown_loop()
        if hasattr(self, "_finalizer"):
            self._finalizer.detach()
            atexit.unregister(self._finalizer)

    def __enter__(self) -> LlmRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._engine.port}" if self.is_running and self._engine else "stopped"
        return f"<LlmRouter {state}>"
