"""The supervisord event listener behind gateway_worker_restarts_total, driven by its protocol."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gateway.runtime.restarts import listen, restarted_model


def event(name: str, payload: str) -> str:
    header = f"ver:3.0 server:supervisor serial:1 pool:restarts poolserial:1 eventname:{name} len:{len(payload)}\n"
    return header + payload


def starting(process: str, group: str, from_state: str) -> str:
    return event("PROCESS_STATE_STARTING", f"processname:{process} groupname:{group} from_state:{from_state} tries:0")


@pytest.mark.parametrize(
    ("process", "group", "from_state", "expected"),
    [
        ("plumber-mtcars-1", "plumber-mtcars", "EXITED", "mtcars"),  # crashed, auto-restarted
        ("plumber-mtcars-2", "plumber-mtcars", "BACKOFF", "mtcars"),  # a retry after a failed start
        ("plumber-mtcars-1", "plumber-mtcars", "STOPPED", None),  # the first start, or an operator's restart
        ("plumber-mtcars--g1-1", "plumber-mtcars--g1", "EXITED", "mtcars"),  # a pool a reload replaced
        ("plumber-mtcars--v2--g1-1", "plumber-mtcars--v2--g1", "EXITED", "mtcars"),
        ("gunicorn", "gunicorn", "EXITED", None),  # not an R worker
    ],
)
def test_only_r_workers_starting_again_after_an_exit_count(
    process: str, group: str, from_state: str, expected: str | None
) -> None:
    header, payload = starting(process, group, from_state).split("\n", 1)
    headers = dict(token.split(":", 1) for token in header.split())
    assert restarted_model(headers, payload) == expected


def test_listener_counts_per_model_and_keeps_the_protocol(tmp_path: Path) -> None:
    counts = tmp_path / "restarts.json"
    events = [
        starting("plumber-mtcars-1", "plumber-mtcars", "STOPPED"),
        starting("plumber-mtcars-1", "plumber-mtcars", "EXITED"),
        event("PROCESS_STATE_RUNNING",
              "processname:plumber-mtcars-1 groupname:plumber-mtcars from_state:STARTING pid:9"),
        starting("plumber-mtcars-2", "plumber-mtcars", "EXITED"),
        starting("plumber-cars-1", "plumber-cars", "BACKOFF"),
    ]
    out = io.StringIO()
    listen(counts, io.StringIO("".join(events)), out)
    assert json.loads(counts.read_text()) == {"mtcars": 2, "cars": 1}
    # READY before each event, one OK result after each, and READY again when stdin ends.
    assert out.getvalue() == "READY\nRESULT 2\nOK" * len(events) + "READY\n"


def test_counts_survive_a_restart_of_the_listener(tmp_path: Path) -> None:
    counts = tmp_path / "restarts.json"
    for _ in range(2):
        listen(counts, io.StringIO(starting("plumber-mtcars-1", "plumber-mtcars", "EXITED")), io.StringIO())
    assert json.loads(counts.read_text()) == {"mtcars": 2}
