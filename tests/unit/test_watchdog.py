"""The stuck-worker watchdog: kills a worker silent past its limit, spares a merely busy one."""

from __future__ import annotations

import io

from gateway.runtime.plan import Endpoint, Plan, PoolPlan
from gateway.runtime.watchdog import GRACE_S, START_LIMIT_S, Watchdog, Watched, listen, watched_workers

A = Watched("plumber-m:plumber-m-1", Endpoint("127.0.0.1", 1), "/healthz", limit_s=12.0)
B = Watched("plumber-m:plumber-m-2", Endpoint("127.0.0.1", 2), "/healthz", limit_s=12.0)


def make(answering: dict[str, bool]) -> tuple[Watchdog, list[str]]:
    killed: list[str] = []
    return Watchdog([A, B], lambda w: answering[w.program], killed.append), killed


def test_a_worker_silent_past_its_limit_is_killed_once() -> None:
    answering = {A.program: False, B.program: True}
    dog, killed = make(answering)
    assert dog.tick(0.0) == []
    assert dog.tick(10.0) == []  # busy, but still within timeout + grace
    assert dog.tick(12.5) == [A.program]
    assert killed == [A.program]
    assert dog.tick(13.0) == []  # the clock starts again for the fresh process


def test_a_worker_that_answers_again_is_forgiven() -> None:
    answering = {A.program: False, B.program: True}
    dog, killed = make(answering)
    dog.tick(0.0)
    answering[A.program] = True
    dog.tick(8.0)
    answering[A.program] = False
    assert dog.tick(15.0) == [] and dog.tick(20.0) == []  # silent for 5 s only
    assert killed == []


def test_a_worker_loading_after_a_restart_gets_the_start_limit_then_the_normal_one() -> None:
    # On a busy host R can take longer than timeout + grace to load: that is not a stuck worker.
    answering = {A.program: False, B.program: True}
    dog, killed = make(answering)
    dog.started(A.program)
    assert dog.tick(0.0) == [] and dog.tick(12.5) == [] and dog.tick(START_LIMIT_S - 1) == []
    assert dog.tick(START_LIMIT_S + 1) == [A.program]  # never answered: hung while loading
    answering[A.program] = True
    dog.tick(70.0)  # the fresh process answered: from now on the model's limit applies
    answering[A.program] = False
    assert dog.tick(75.0) == [] and dog.tick(88.0) == [A.program]
    assert killed == [A.program, A.program]


def test_every_local_worker_of_every_pool_is_watched_with_its_models_timeout() -> None:
    primary = PoolPlan("m", "model", "/s/m/1", "1", (Endpoint("127.0.0.1", 5), Endpoint("127.0.0.1", 6)), 30.0,
                       hosts=(Endpoint("10.0.0.2", 9100),))
    extra = PoolPlan("m", "model", "/s/m/2", "2", (Endpoint("127.0.0.1", 7),), 30.0, primary=False)
    unused = Endpoint("127.0.0.1", 0)
    plan = Plan("/run", unused, unused, unused, {"m": primary}, extra_pools={extra.key: extra})
    watched = watched_workers(plan)
    assert [w.program for w in watched] == ["plumber-m:plumber-m-1", "plumber-m:plumber-m-2",
                                            "plumber-m--v2:plumber-m--v2-1"]
    assert {w.limit_s for w in watched} == {30.0 + GRACE_S}


def test_listener_protocol_ticks_and_acknowledges() -> None:
    dog, killed = make({A.program: False, B.program: True})
    events = "".join(f"ver:3.0 eventname:TICK_5 len:{len(p)}\n{p}" for p in ("when:0", "when:5", "when:20"))
    out = io.StringIO()
    times = iter([0.0, 5.0, 20.0])
    listen(dog, io.StringIO(events), out, clock=lambda: next(times))
    assert out.getvalue().count("READY\n") == 4 and out.getvalue().count("RESULT 2\nOK") == 3
    assert killed == [A.program]


def test_a_starting_event_marks_the_worker_as_loading() -> None:
    dog, killed = make({A.program: False, B.program: True})
    starting = "processname:plumber-m-1 groupname:plumber-m from_state:EXITED tries:0"
    events = [("PROCESS_STATE_STARTING", starting), ("TICK_5", "when:0"), ("TICK_5", "when:20")]
    stream = "".join(f"ver:3.0 eventname:{name} len:{len(p)}\n{p}" for name, p in events)
    times = iter([0.0, 20.0])
    listen(dog, io.StringIO(stream), io.StringIO(), clock=lambda: next(times))
    assert killed == []  # 20 s of silence is past its limit (12 s) but within the start limit
    assert dog.starting == {A.program}


def test_a_worker_stopped_on_purpose_is_not_reported_killed_and_is_watched_on() -> None:
    # A scaling pool's stopped workers never answer; supervisord says they are not running.
    asked: list[str] = []

    def not_running(program: str) -> bool:
        asked.append(program)
        return False

    dog = Watchdog([A], lambda w: False, not_running)
    assert dog.tick(0.0) == [] and dog.tick(12.5) == []
    assert asked == [A.program] and dog.tick(13.0) == []  # the clock starts again
