"""Micro-batching through a real stack: concurrent callers of an R pool each get their own answer.

Every payload is first sent alone (an idle batcher calls R with it alone); then all are sent at
once, several rounds, so they coalesce into shared R calls. Each concurrent reply must equal the
solo one for the same payload and carry its caller's request_id.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import build_r_store

MODELS = {
    "mtcars": {"backend": "plumber", "workers": 2, "batch": {"max_size": 256, "max_wait_ms": 5}},
    "transmission": {"backend": "plumber", "workers": 2},
    "fragile": {"backend": "plumber", "workers": 1, "batch": {"max_size": 64, "max_wait_ms": 5}},
}
CLIENTS = 24
ROUNDS = 3


def mtcars_payload(i: int) -> list[dict[str, Any]]:
    """1 to 3 rows that differ per caller, so a swapped reply cannot go unnoticed."""
    return [
        {"wt": 1.5 + 0.1 * i + 0.01 * k, "hp": 60 + 7 * i + k, "cyl": (4, 6, 8)[(i + k) % 3],
         "am": ("auto", "manual")[(i + k) % 2]}
        for k in range(1 + i % 3)
    ]


def transmission_payload(i: int) -> dict[str, Any]:
    rows = [{"mpg": 12.0 + i, "hp": 60 + 9 * i, "wt": 1.8 + 0.08 * i, "engine": ("V-shaped", "straight")[i % 2]}]
    return {"instances": rows, "params": {"type": "prob" if i % 2 else "response"}}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    store = build_r_store(tmp_path_factory.mktemp("r") / "store")
    with start_stack(tmp_path_factory.mktemp("batchstack"), MODELS, {"threads": 8}, store=store) as running:
        yield running


def all_at_once(gw: Stack, jobs: list[tuple[str, Any]]) -> list[requests.Response]:
    """POST every (path, json) job from its own thread and session, released together."""
    barrier = threading.Barrier(len(jobs))
    sessions = [requests.Session() for _ in jobs]
    for session in sessions:
        session.trust_env = False

    def send(index: int) -> requests.Response:
        path, body = jobs[index]
        barrier.wait(10)
        return sessions[index].post(gw.url + path, json=body, timeout=30,
                                    headers={"X-Request-ID": f"caller-{index}"})

    try:
        with ThreadPoolExecutor(len(jobs)) as pool:
            return list(pool.map(send, range(len(jobs))))
    finally:
        for session in sessions:
            session.close()


def close(got: list[Any], want: list[Any]) -> bool:
    return len(got) == len(want) and all(abs(g - w) <= 1e-12 * max(1.0, abs(w)) for g, w in zip(got, want, strict=True))


def test_concurrent_callers_each_get_their_own_r_predictions(gw: Stack) -> None:
    solo = []
    for i in range(CLIENTS):
        reply = gw.post("/models/mtcars/predict", json=mtcars_payload(i))
        assert reply.status_code == 200, reply.text
        solo.append(reply.json()["predictions"])
    for _ in range(ROUNDS):
        replies = all_at_once(gw, [("/models/mtcars/predict", mtcars_payload(i)) for i in range(CLIENTS)])
        for i, reply in enumerate(replies):
            assert reply.status_code == 200, reply.text
            doc = reply.json()
            assert doc["request_id"] == f"caller-{i}"
            assert reply.headers["X-Request-ID"] == f"caller-{i}"
            assert close(doc["predictions"], solo[i]), (i, doc["predictions"], solo[i])
    stats = {b["model"]: b for b in gw.get("/admin/batching").json()["batchers"]}["mtcars/1"]
    assert stats["batched_calls"] >= 1  # the concurrent rounds did coalesce
    assert stats["requests"] == CLIENTS * (ROUNDS + 1)
    assert stats["calls"] < stats["requests"]


def test_mixed_params_never_share_an_answer(gw: Stack) -> None:
    solo = [gw.post("/models/transmission/predict", json=transmission_payload(i)).json()["predictions"]
            for i in range(16)]
    assert isinstance(solo[1][0], dict) and isinstance(solo[0][0], str)  # prob rows vs labels
    replies = all_at_once(gw, [("/models/transmission/predict", transmission_payload(i)) for i in range(16)])
    assert [r.json()["predictions"] for r in replies] == solo
    assert [r.json()["request_id"] for r in replies] == [f"caller-{i}" for i in range(16)]


def test_a_poisoned_request_fails_alone_among_concurrent_neighbours(gw: Stack) -> None:
    jobs = [("/models/fragile/predict", [{"x": -5.0 if i == 3 else float(i)}]) for i in range(12)]
    replies = all_at_once(gw, jobs)
    for i, reply in enumerate(replies):
        if i == 3:
            assert reply.status_code == 422, reply.text
            assert "x must be non-negative, got -5" in reply.json()["detail"]
            assert reply.json()["request_id"] == "caller-3"
        else:
            assert reply.status_code == 200, reply.text
            assert reply.json()["predictions"] == [2.0 * i]


def test_a_row_failing_validation_fails_before_batching(gw: Stack) -> None:
    bad = [{"wt": "heavy", "hp": 110, "cyl": 6, "am": "manual"}]
    jobs = [("/models/mtcars/predict", bad if i == 0 else mtcars_payload(i)) for i in range(8)]
    replies = all_at_once(gw, jobs)
    assert replies[0].status_code == 422
    assert "column 'wt' expects double" in replies[0].json()["detail"]
    assert all(r.status_code == 200 for r in replies[1:])
