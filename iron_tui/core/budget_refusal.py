"""A refused admission and its 402 body (DESIGN.md §3: the wire contract kept from the original)."""

from __future__ import annotations

from typing import Any, Literal


def format_usd(micros: int) -> str:
    """USD with 2 to 6 decimals: 10.00, 1.2345, 0.000012 (µ$ precision, no float noise)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    digits = f"{frac:06d}".rstrip("0")
    return f"{sign}{whole}.{digits.ljust(2, '0')}"


class BudgetExceeded(Exception):
    """A refused admission. `kind` "exceeded": spent has reached the limit; "insufficient": not even the
    smallest useful answer (`estimate`: its cost) fits in what is left after in-flight reservations.
    `detail` says more when the request itself is the reason (no output bound known)."""

    def __init__(
        self,
        kind: Literal["exceeded", "insufficient"],
        *,
        spent: int,
        reserved: int,
        limit: int,
        estimate: int,
        period: str = "session",
        available: int | None = None,
        detail: str = "",
    ) -> None:
        self.kind: Literal["exceeded", "insufficient"] = kind
        self.spent = spent
        self.reserved = reserved
        self.limit = limit
        self.estimate = estimate
        self.period = period
        self._available = available
        self.detail = detail
        super().__init__(self.message)

    @property
    def available(self) -> int:
        """What this process could still book (other processes' slices of a shared budget excluded)."""
        if self._available is not None:
            return max(0, self._available)
        return max(0, self.limit - self.spent - self.reserved)

    @property
    def error_type(self) -> str:
        return "iron_cage_budget_exceeded" if self.kind == "exceeded" else "iron_cage_insufficient_budget"

    @property
    def code(self) -> str:
        return "budget_exceeded" if self.kind == "exceeded" else "insufficient_budget"

    @property
    def message(self) -> str:
        if self.kind == "exceeded":
            adjective = {"day": "daily", "week": "weekly", "month": "monthly"}.get(self.period)
            reset = f" or wait for the {adjective} budget to reset" if adjective else ""
            return (
                f"Iron Cage budget limit exceeded. Spent: ${format_usd(self.spent)}, "
                f"Reserved: ${format_usd(self.reserved)}, Limit: ${format_usd(self.limit)}. "
                f"Increase the budget (router.set_budget(), --budget or the dashboard){reset}."
            )
        detail = f" {self.detail}" if self.detail else ""
        return (
            f"Iron Cage insufficient budget for request. Available: ${format_usd(self.available)}, "
            f"Estimated max cost: ${format_usd(self.estimate)}.{detail} Reduce max_tokens, wait for in-flight "
            f"requests to complete, or increase the budget."
        )


def budget_error_body(exc: BudgetExceeded, shape: Literal["openai", "anthropic"]) -> dict[str, Any]:
    """The JSON body of the 402 in the caller's API shape (DESIGN.md section 3)."""
    if shape == "anthropic":
        return {"type": "error", "error": {"type": exc.error_type, "message": exc.message}}
    return {"error": {"message": exc.message, "type": exc.error_type, "param": None, "code": exc.code}}
