"""The host prober's decisions: when a host leaves its pool's upstream, and the lines it writes."""

from __future__ import annotations

from pathlib import Path

from gateway.hoststate import HostState, read_states, write_states
from gateway.runtime.plan import Endpoint, PoolPlan
from gateway.runtime.prober import FAILURES_OUT, decide
from gateway.runtime.render import host_servers

HOSTS = (Endpoint("198.18.1.2", 9100), Endpoint("198.18.2.2", 9100))


def pool(workers: tuple[Endpoint, ...] = ()) -> PoolPlan:
    return PoolPlan("mtcars", "model", "/store/mtcars/1", "1", workers, 10.0, hosts=HOSTS)


def states(*answering: bool) -> dict[str, HostState]:
    return {h.address: HostState(ok, True, 0.01, 1, 0, 0.0) for h, ok in zip(HOSTS, answering, strict=True)}


def test_a_host_leaves_after_repeated_failures_but_the_last_one_stays() -> None:
    one, two = (h.address for h in HOSTS)
    assert decide(pool(), states(False, True), {one: FAILURES_OUT - 1}) == set()  # one lost probe moves nothing
    assert decide(pool(), states(False, True), {one: FAILURES_OUT}) == {one}
    assert decide(pool(), states(False, False), {one: FAILURES_OUT, two: FAILURES_OUT}) == set()
    with_local = pool((Endpoint.unix("/run/r/1.sock"),))  # local workers still serve: both may go
    assert decide(with_local, states(False, False), {one: FAILURES_OUT, two: FAILURES_OUT}) == {one, two}


def test_a_host_out_is_written_down_and_the_states_read_back(tmp_path: Path) -> None:
    text = host_servers(tmp_path, pool(), relay=False, out={HOSTS[0].address})
    assert "server 198.18.1.2:9100 down;" in text
    assert "server 198.18.2.2:9100 max_fails=1 fail_timeout=5s;" in text
    relayed = host_servers(tmp_path, pool(), relay=True, out=set())
    assert "198.18" not in relayed and relayed.count('"unix:') == 2
    write_states(tmp_path, {"mtcars": states(True, False)})
    assert read_states(tmp_path, max_age_s=60) == {"mtcars": states(True, False)}
    assert read_states(tmp_path, max_age_s=-1) is None  # too old: the prober has stopped
