"""Per-model bulkheads: at most `max_in_flight` requests of one model at a time in a Gunicorn
worker; the next is refused at once (503, Retry-After) instead of waiting on a request thread.

Without them, clients of one slow model take every thread of every worker (each waiting for R),
and an unrelated model's requests queue behind them: 28 ms became 7-16 s in issue 14.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.errors import Busy


class Bulkheads:
    """One counter per model name; a limit of 0 means no cap for that model."""

    def __init__(self, limits: dict[str, int]) -> None:
        self._limits = limits
        self._in_flight = dict.fromkeys(limits, 0)
        self._lock = threading.Lock()

    @contextmanager
    def enter(self, model: str) -> Iterator[None]:
        """Hold one of `model`'s slots for the block; raises Busy when none is free."""
        limit = self._limits.get(model, 0)
        if not limit:
            yield
            return
        with self._lock:
            if self._in_flight[model] >= limit:
                raise Busy(f"model '{model}' already has {limit} requests in flight in this worker "
                           f"(models.{model}.max_in_flight); retry shortly", model=model)
            self._in_flight[model] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[model] -= 1
