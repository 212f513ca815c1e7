"""The scaling decision (signals in, action out), the tracker that makes signals from samples, and
the scaler's round over supervisord's process list (given as data; no supervisord here)."""

from __future__ import annotations

import pytest

from gateway.poolstate import WorkerStates
from gateway.runtime.autoscale import UP_AFTER_S, Limits, Signals, Tracker, decide
from gateway.runtime.scaler import Scaler
from gateway.topology import Endpoint, PoolPlan

LIMITS = Limits(min=1, max=4, idle_s=300)
IDLE = lambda pool, endpoint: True  # noqa: E731 - every running worker answers its health route at once
ZERO = Limits(min=0, max=2, idle_s=60)


@pytest.mark.parametrize(("signals", "limits", "action"), [
    # nothing to do: as many calls as workers is busy, not queued
    (Signals(running=1, starting=0, in_flight=0, calm_for_s=10), LIMITS, "hold"),
    (Signals(running=2, starting=0, in_flight=2, queued_for_s=0, calm_for_s=400, peak_in_flight=2), LIMITS, "hold"),
    # every worker busy and requests queue: another, once the queue has lasted UP_AFTER_S
    (Signals(running=2, starting=0, in_flight=5, queued_for_s=UP_AFTER_S), LIMITS, "start"),
    (Signals(running=2, starting=0, in_flight=5, queued_for_s=UP_AFTER_S / 2), LIMITS, "hold"),
    # ... never past max, and never while one is still starting
    (Signals(running=4, starting=0, in_flight=9, queued_for_s=30), LIMITS, "hold"),
    (Signals(running=2, starting=1, in_flight=9, queued_for_s=30), LIMITS, "hold"),
    # below min (the pool's first seconds, a worker gone): start, queue or not
    (Signals(running=0, starting=0, in_flight=0), LIMITS, "start"),
    # min 0: idle with nothing running is fine; the first call starts one at once (cold start)
    (Signals(running=0, starting=0, in_flight=0, calm_for_s=1000), ZERO, "hold"),
    (Signals(running=0, starting=0, in_flight=1, queued_for_s=0), ZERO, "start"),
    # ... or when a call waited since the last round and already gave up (cold_start_s was short)
    (Signals(running=0, starting=0, in_flight=0, asked=True), ZERO, "start"),
    (Signals(running=1, starting=0, in_flight=0, asked=True, calm_for_s=1), ZERO, "hold"),
    # idle: at most running-1 busy at every sample of idle_s, and idle_s since the last start
    (Signals(running=3, starting=0, in_flight=0, peak_in_flight=2, calm_for_s=300), LIMITS, "stop"),
    (Signals(running=3, starting=0, in_flight=0, peak_in_flight=3, calm_for_s=300), LIMITS, "hold"),
    (Signals(running=3, starting=0, in_flight=0, peak_in_flight=0, calm_for_s=299), LIMITS, "hold"),
    # never below min; min 0 goes to zero
    (Signals(running=1, starting=0, in_flight=0, peak_in_flight=0, calm_for_s=9999), LIMITS, "hold"),
    (Signals(running=1, starting=0, in_flight=0, peak_in_flight=0, calm_for_s=60), ZERO, "stop"),
])
def test_decide(signals: Signals, limits: Limits, action: str) -> None:
    decision = decide(signals, limits)
    assert decision.action == action, decision
    assert decision.action == "hold" or decision.reason


def test_a_queue_counts_from_its_first_sample_and_a_dip_resets_it() -> None:
    tracker = Tracker(idle_s=10, since=0.0)
    assert tracker.observe(1.0, running=1, starting=0, in_flight=3).queued_for_s == 0
    assert tracker.observe(1.5, running=1, starting=0, in_flight=2).queued_for_s == 0.5
    assert tracker.observe(1.75, running=1, starting=0, in_flight=1).queued_for_s == 0  # not queued
    assert tracker.observe(2.0, running=1, starting=0, in_flight=4).queued_for_s == 0


def test_the_peak_covers_only_the_last_idle_s_and_a_start_restarts_the_calm() -> None:
    tracker = Tracker(idle_s=10, since=0.0)
    tracker.observe(1.0, running=2, starting=0, in_flight=2)
    signals = tracker.observe(5.0, running=2, starting=0, in_flight=0)
    assert (signals.peak_in_flight, signals.calm_for_s) == (2, 5.0)
    signals = tracker.observe(12.0, running=2, starting=0, in_flight=0)
    assert (signals.peak_in_flight, signals.calm_for_s) == (0, 12.0)  # the busy sample aged out
    tracker.started(12.0)
    assert tracker.observe(13.0, running=3, starting=0, in_flight=0).calm_for_s == 1.0


def pool(key: str, workers: int, min_workers: int | None, idle_s: float = 5.0) -> PoolPlan:
    endpoints = tuple(Endpoint.unix(f"/nowhere/{key}-{i}.sock") for i in range(1, workers + 1))
    return PoolPlan(key, "model", "/store", "1", endpoints, 10.0, min_workers=min_workers, idle_s=idle_s)


def infos(key: str, *states: str) -> list[dict[str, str]]:
    return [{"name": f"plumber-{key}-{i}", "statename": s} for i, s in enumerate(states, start=1)]


def test_a_round_starts_the_first_stopped_worker_when_calls_queue_and_reports_states() -> None:
    scaler = Scaler([pool("m", 3, 1)], started_at=0.0)
    listed = infos("m", "RUNNING", "STOPPED", "STOPPED")
    steps, states = scaler.tick(0.0, listed, {"m": 4}, lambda e: False, IDLE)
    assert steps == [] and states == {"m": WorkerStates(running=1, starting=0, stopped=2)}
    steps, _ = scaler.tick(UP_AFTER_S, listed, {"m": 4}, lambda e: False, IDLE)
    assert [(s.program, s.action) for s in steps] == [("plumber-m:plumber-m-2", "start")]


def test_a_starting_worker_that_accepts_counts_as_running_and_fatal_ones_are_never_started() -> None:
    scaler = Scaler([pool("m", 3, 0)], started_at=0.0)
    accepting = {"/nowhere/m-1.sock"}
    steps, states = scaler.tick(0.0, infos("m", "STARTING", "FATAL", "STOPPED"), {"m": 1},
                                lambda e: e.path in accepting, IDLE)
    assert states == {"m": WorkerStates(running=1, starting=0, stopped=1, fatal=1)} and steps == []
    scaler = Scaler([pool("m", 2, 0)], started_at=0.0)
    steps, _ = scaler.tick(0.0, infos("m", "FATAL", "STOPPED"), {"m": 1}, lambda e: False, IDLE)
    assert [s.program for s in steps] == ["plumber-m:plumber-m-2"]  # the cold start skips the FATAL one


def test_an_idle_pool_stops_its_highest_running_worker_one_per_round_down_to_min() -> None:
    scaler = Scaler([pool("m", 3, 1, idle_s=5.0)], started_at=0.0)
    steps, _ = scaler.tick(6.0, infos("m", "RUNNING", "RUNNING", "RUNNING"), {}, lambda e: False, IDLE)
    assert [(s.program, s.action) for s in steps] == [("plumber-m:plumber-m-3", "stop")]
    steps, _ = scaler.tick(6.25, infos("m", "RUNNING", "RUNNING", "STOPPED"), {}, lambda e: False, IDLE)
    assert [(s.program, s.action) for s in steps] == [("plumber-m:plumber-m-2", "stop")]
    steps, _ = scaler.tick(6.5, infos("m", "RUNNING", "STOPPED", "STOPPED"), {}, lambda e: False, IDLE)
    assert steps == []


def test_fixed_pools_are_left_alone() -> None:
    scaler = Scaler([p for p in [pool("fixed", 2, None), pool("m", 2, 1)] if p.scales], started_at=0.0)
    steps, states = scaler.tick(0.0, infos("fixed", "STOPPED", "STOPPED"), {"fixed": 9}, lambda e: False, IDLE)
    assert set(states) == {"m"} and [s.program for s in steps] == ["plumber-m:plumber-m-1"]  # m below min


def test_an_idle_round_stops_only_a_worker_with_nothing_in_hand() -> None:
    scaler = Scaler([pool("m", 3, 1, idle_s=5.0)], started_at=0.0)
    busy = {"/nowhere/m-3.sock"}  # predicting: it cannot answer its health route now
    steps, _ = scaler.tick(6.0, infos("m", "RUNNING", "RUNNING", "RUNNING"), {}, lambda e: False,
                           lambda p, e: e.path not in busy)
    assert [(s.program, s.action) for s in steps] == [("plumber-m:plumber-m-2", "stop")]
    steps, _ = scaler.tick(6.25, infos("m", "RUNNING", "RUNNING", "RUNNING"), {}, lambda e: False,
                           lambda p, e: False)
    assert steps == []


def test_a_call_that_waited_between_two_rounds_starts_a_worker_once() -> None:
    scaler = Scaler([pool("m", 2, 0)], started_at=0.0)
    listed = infos("m", "STOPPED", "STOPPED")
    assert scaler.tick(0.0, listed, {}, lambda e: False, IDLE, {"m": 100.0})[0] == []  # seen before: no call
    steps, _ = scaler.tick(0.25, listed, {}, lambda e: False, IDLE, {"m": 101.0})
    assert [s.program for s in steps] == ["plumber-m:plumber-m-1"]
    assert scaler.tick(0.5, listed, {}, lambda e: False, IDLE, {"m": 101.0})[0] == []
