"""Which version answers an unversioned predict: weighted traffic, sticky routing keys, shadows.

A request with an `X-Routing-Key` hashes to a point on the weight line, so the same key lands on
the same version for as long as the weights stay; without a key the point is random.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
_SHADOW_QUEUE_LIMIT = 64  # shadow calls waiting at most; beyond it they are dropped, never queued up


def pick_version(weights: Sequence[tuple[str, int]], routing_key: str | None = None,
                 rng: random.Random | None = None) -> str:
    """A version drawn in proportion to its weight (deterministic for a routing key)."""
    total = sum(weight for _, weight in weights)
    if routing_key is not None:
        point = int.from_bytes(hashlib.sha256(routing_key.encode()).digest()[:8], "big") % total
    else:
        point = (rng or random).randrange(total)
    for version, weight in weights:
        if point < weight:
            return version
        point -= weight
    raise AssertionError("unreachable: the point lies within the total weight")


@dataclass
class ShadowStats:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    agreed: int = 0  # replies equal to the live version's, row for row


@dataclass
class Shadow:
    """Copies of live traffic to another version, after the live reply; results only counted."""

    version: str
    stats: ShadowStats = field(default_factory=ShadowStats)
    _pool: ThreadPoolExecutor | None = None
    _pending: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, call: Callable[[], list], live: list, model: str) -> None:
        with self._lock:
            if self._pending >= _SHADOW_QUEUE_LIMIT:
                self.stats.dropped += 1
                return
            self._pending += 1
            if self._pool is None:  # created lazily: after Gunicorn forks
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"shadow-{model}")
        self._pool.submit(self._run, call, live, model)

    def _run(self, call: Callable[[], list], live: list, model: str) -> None:
        try:
            predictions = call()
        except Exception as exc:  # a shadow must never disturb anything: count and log it
            with self._lock:
                self.stats.failed += 1
            log.warning("shadow version %s of %s failed: %s", self.version, model, exc)
        else:
            with self._lock:
                self.stats.sent += 1
                self.stats.agreed += predictions == live
        finally:
            with self._lock:
                self._pending -= 1
