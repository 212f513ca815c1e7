"""What a reload starts, keeps and stops: the configured R pools against the running plan."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gateway.runtime.live_pools import program_inputs, replan
from gateway.runtime.plan import Endpoint, Plan, make_plan
from gateway.settings import Settings, settings_from_dict


def _settings(tmp_path: Path, models: dict[str, dict], **server: object) -> Settings:
    for name in ("cars", "bikes", "cars2"):
        script = tmp_path / name / "plumber.R"
        script.parent.mkdir(exist_ok=True)
        script.write_text("#* @get /ping\nfunction() 'pong'\n")
    raw = {"server": {"run_dir": "run", **server}, "store": {"path": "store"}, "models": models}
    return settings_from_dict(raw, base_dir=tmp_path)


CARS = {"backend": "plumber", "workers": 2, "script": "cars/plumber.R"}
BIKES = {"backend": "plumber", "workers": 1, "script": "bikes/plumber.R"}


def test_an_unchanged_config_keeps_every_pool(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"cars": CARS})
    running = make_plan(settings)
    change = replan(settings, running)
    assert (change.plan, change.started, change.retired) == (running, (), ())


def test_a_changed_pool_gets_a_new_key_and_fresh_sockets_beside_the_old_one(tmp_path: Path) -> None:
    running = make_plan(_settings(tmp_path, {"cars": CARS, "bikes": BIKES}))
    change = replan(_settings(tmp_path, {"cars": {**CARS, "script": "cars2/plumber.R"}, "bikes": BIKES}), running)
    (new,) = change.started
    assert (new.key, new.generation, new.programs) == ("cars--g1", 1, ["plumber-cars--g1-1", "plumber-cars--g1-2"])
    assert [w.path.rsplit("/", 1)[1] for w in new.workers] == ["4.sock", "5.sock"]  # 1-3 still serve
    assert change.retired == (running.pools["cars"],)
    assert change.plan.pools == {"cars": new, "bikes": running.pools["bikes"]}
    assert {p.key for p in change.transition.all_pools} == {"cars", "cars--g1", "bikes"}
    # Replaced again (here: back to the first script), it never takes a key still in use.
    again = replan(_settings(tmp_path, {"cars": CARS, "bikes": BIKES}), change.plan)
    assert [p.key for p in again.started] == ["cars--g2"]


def test_models_added_and_removed_start_and_retire_their_pools(tmp_path: Path) -> None:
    running = make_plan(_settings(tmp_path, {"cars": CARS}))
    change = replan(_settings(tmp_path, {"bikes": BIKES}), running)
    assert [p.key for p in change.started] == ["bikes"]
    assert change.retired == (running.pools["cars"],)
    assert list(change.plan.pools) == ["bikes"]


def test_a_new_worker_count_or_timeout_replaces_the_pool(tmp_path: Path) -> None:
    running = make_plan(_settings(tmp_path, {"cars": CARS}))
    for edit in ({"workers": 3}, {"timeout_s": 5}):
        change = replan(_settings(tmp_path, {"cars": {**CARS, **edit}}), running)
        assert [p.key for p in change.started] == ["cars--g1"], edit


def test_new_hosts_keep_the_local_workers(tmp_path: Path) -> None:
    running = make_plan(_settings(tmp_path, {"cars": CARS}))
    change = replan(_settings(tmp_path, {"cars": {**CARS, "hosts": ["10.0.0.2:9000"]}}), running)
    assert (change.started, change.retired) == ((), ())
    assert change.plan.pools["cars"] == dataclasses.replace(running.pools["cars"],
                                                            hosts=(Endpoint("10.0.0.2", 9000),))


def test_tcp_workers_get_ports_no_pool_holds(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"cars": CARS}, worker_port_base=41010)
    running = make_plan(settings)
    change = replan(_settings(tmp_path, {"cars": CARS, "bikes": BIKES}, worker_port_base=41010), running)
    (bikes,) = change.started
    assert bikes.workers[0].port > 41011  # 41010 and 41011 are cars'
    (tmp_path / "run").mkdir()
    assert Plan.load(change.plan.save()) == change.plan  # the generation survives the plan file


def test_new_log_rotation_replaces_every_pool(tmp_path: Path) -> None:
    """supervisord would restart each program in place for a changed section: a gap per model."""
    settings = _settings(tmp_path, {"cars": CARS, "bikes": BIKES})
    rotated = _settings(tmp_path, {"cars": CARS, "bikes": BIKES}, log_backups=5)
    assert program_inputs(rotated) != program_inputs(settings)
    running = make_plan(settings)
    change = replan(rotated, running, replace_all=True)
    assert sorted(p.key for p in change.started) == ["bikes--g1", "cars--g1"]
    assert len(change.retired) == 2
