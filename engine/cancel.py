"""Stopping work early: a deadline and a cancel flag the engine checks between steps.

The server sets one `Budget` per request (a context variable, so it follows the request into worker threads);
long loops call `checker()` once before the loop and `check()` between chunks of work. Without a budget (the
engine used as a library, the tests) `checker()` is None and nothing is checked.
"""

import time
from contextvars import ContextVar


class Stopped(RuntimeError):
    """Work stopped before its end: the deadline passed (`reason == "deadline"`) or the client left ("cancelled")."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class Budget:
    """A deadline (time.monotonic seconds, or None) and a flag another thread may set to cancel the work."""

    def __init__(self, seconds: float | None = None):
        self.limit = seconds
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.cancelled = False
        self.notes: dict = {}  # what the request did, for its log line (e.g. the estimated work units)

    def cancel(self) -> None:
        self.cancelled = True

    def check(self) -> None:
        """Raise Stopped if the client left or the deadline passed."""
        if self.cancelled:
            raise Stopped("cancelled", "request: the client disconnected; the work was stopped")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Stopped("deadline", f"request: took longer than the limit of {self.limit:g} s and was stopped")


_current: ContextVar[Budget | None] = ContextVar("backprop_viz_budget", default=None)


def activate(budget: Budget | None):
    """Make `budget` the current one; returns the token for `deactivate`."""
    return _current.set(budget)


def deactivate(token) -> None:
    _current.reset(token)


def current() -> Budget | None:
    return _current.get()


def checker():
    """The current budget's `check`, or None when there is no budget (bind it once, outside the hot loop)."""
    budget = _current.get()
    return None if budget is None else budget.check


def check() -> None:
    """Check the current budget, if any."""
    budget = _current.get()
    if budget is not None:
        budget.check()
