"""When a pool that follows the load gets another worker or gives one back: pure decisions.

`decide` maps one pool's signals to an action and holds no state; `Tracker` turns the samples the
scaler takes every tick (workers running, calls in flight) into those signals. Neither touches a
process or a clock, so every rule is a unit test (tests/unit/test_autoscale.py).

The rules, one change at a time (a worker still starting blocks the next change):
- below `min` running: start one (supervisord restarts a crashed worker itself; this covers the
  pool's first seconds and a worker the scaler itself had stopped).
- more calls in flight than running workers, i.e. every worker busy and requests queue: start
  one, at once when none runs (a cold start: a request is waiting, or waited since the last
  round and gave up: `asked`), else once the queue has lasted UP_AFTER_S (a burst that one
  round of R calls absorbs does not start R processes).
- above `min`, and no more calls in flight than running-1 at any sample for `idle_s` (and no
  start within idle_s): stop one, the surplus worker nobody needed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

UP_AFTER_S = 1.0  # a queue must last this long before a second (third, ...) worker starts

Action = Literal["start", "stop", "hold"]


@dataclass(frozen=True)
class Limits:
    min: int
    max: int
    idle_s: float


@dataclass(frozen=True)
class Signals:
    """One pool now: `queued_for_s` how long in_flight has exceeded running (0: not now);
    `peak_in_flight` the most calls in flight at once over the last idle_s; `calm_for_s` how long
    since the last start (or since watching began), which an idle window must fill."""

    running: int
    starting: int
    in_flight: int
    asked: bool = False  # a call waited for a worker since the last round (it may have given up)
    queued_for_s: float = 0.0
    peak_in_flight: int = 0
    calm_for_s: float = 0.0


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""


def decide(signals: Signals, limits: Limits) -> Decision:
    """The one change this pool needs now, with the reason the scaler logs."""
    s = signals
    if s.starting:
        return Decision("hold", f"{s.starting} worker(s) still starting")
    if s.running < limits.min:
        return Decision("start", f"{s.running} running, below min {limits.min}")
    if s.running == 0 and s.asked and limits.max:
        return Decision("start", "cold start: a call waited for a worker, none running")
    if s.in_flight > s.running and s.running < limits.max:
        if s.running == 0:
            return Decision("start", f"cold start: {s.in_flight} call(s) waiting, no worker running")
        if s.queued_for_s >= UP_AFTER_S:
            return Decision("start", f"all {s.running} busy, {s.in_flight - s.running} queued for "
                                     f"{s.queued_for_s:.1f} s")
    if s.running > limits.min and s.calm_for_s >= limits.idle_s and s.peak_in_flight < s.running:
        return Decision("stop", f"at most {s.peak_in_flight} of {s.running} busy for {limits.idle_s:g} s")
    return Decision("hold")


@dataclass
class Tracker:
    """Per pool: the samples of the last idle_s and when the current queue began.

    `observe` each tick with the time and the pool's counts; `started` when the scaler starts a
    worker (a fresh worker gets a whole idle window before it can count as surplus).
    """

    idle_s: float
    since: float  # when watching began
    samples: deque[tuple[float, int]] = field(default_factory=deque)
    queued_since: float | None = None
    last_start: float | None = None

    def observe(self, now: float, running: int, starting: int, in_flight: int, asked: bool = False) -> Signals:
        self.samples.append((now, in_flight))
        while self.samples and now - self.samples[0][0] > self.idle_s:
            self.samples.popleft()
        if in_flight > running:
            self.queued_since = now if self.queued_since is None else self.queued_since
        else:
            self.queued_since = None
        calm_from = self.since if self.last_start is None else max(self.since, self.last_start)
        return Signals(
            running=running, starting=starting, in_flight=in_flight, asked=asked,
            queued_for_s=0.0 if self.queued_since is None else now - self.queued_since,
            peak_in_flight=max(n for _, n in self.samples),
            calm_for_s=now - calm_from,
        )

    def started(self, now: float) -> None:
        self.last_start = now
        self.queued_since = None  # the next start needs a queue that outlasts this one's arrival
