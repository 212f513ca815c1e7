"""The host prober's decisions: when a host leaves its pool's upstream, and the lines it writes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.hoststate import HostState, read_states, write_states
from gateway.runtime.plan import Endpoint, Plan, PoolPlan
from gateway.runtime.prober import FAILURES_OUT, Prober, decide
from gateway.runtime.render import host_servers, render_all
from gateway.settings import settings_from_dict

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


def test_a_host_an_earlier_prober_left_down_comes_back_with_its_first_answer(tmp_path: Path) -> None:
    settings = settings_from_dict({"server": {"run_dir": "run", "user": ""}, "models": {}}, base_dir=tmp_path)
    plan = Plan(str(settings.run_dir), Endpoint("127.0.0.1", 40180), Endpoint("127.0.0.1", 40181),
                Endpoint("127.0.0.1", 40182), {"mtcars": pool()})
    settings.run_dir.mkdir()
    write_states(settings.run_dir, {"mtcars": {**states(True, True), HOSTS[0].address: HostState(
        False, False, 1.0, 5, 5, 0.0)}})  # a stack that stopped with host 1 out
    render_all(settings, plan)
    plan.save()
    upstream = settings.run_dir / "upstreams" / "mtcars.conf"
    assert upstream.read_text().count(" down;") == 1  # rendered as the last prober left it
    prober = Prober(settings.run_dir / "plan.json")
    prober.probe = lambda host, path: (True, 0.01)  # type: ignore[assignment,method-assign]
    with ThreadPoolExecutor(max_workers=2) as executor:
        prober.round(executor)
    assert " down;" not in upstream.read_text()
    assert all(state.in_upstream for state in (read_states(settings.run_dir, 60) or {})["mtcars"].values())
