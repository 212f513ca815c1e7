"""Rollouts for an R model: each version the config names gets its own Plumber pool."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Stack, start_stack
from tests.integration.r_models import add_light_mtcars_version, build_r_store, r_predict

ROWS = [{"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"}, {"wt": 3.9, "hp": 230, "cyl": 8, "am": "auto"}]
MODELS = {"mtcars": {
    "backend": "plumber", "workers": 1, "version": "1",
    "aliases": {"champion": "1", "challenger": "2"},
    "traffic": {"champion": 70, "challenger": 30},
}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = build_r_store(tmp_path_factory.mktemp("rollout") / "store")
    add_light_mtcars_version(store)
    return store


@pytest.fixture(scope="module")
def gw(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("rollout-stack"), MODELS, store=store) as running:
        yield running


def test_each_named_version_has_its_own_pool(gw: Stack) -> None:
    programs = set(gw.pids())
    assert {"plumber-mtcars-1", "plumber-mtcars--v2-1"} <= programs
    doc = gw.get("/models/mtcars").json()
    assert doc["versions"] == ["1", "2"]
    assert doc["traffic"] == {"1": 70, "2": 30}


def test_each_version_answers_with_its_own_model(gw: Stack, store: Path) -> None:
    for alias, version in (("champion", "1"), ("challenger", "2")):
        reply = gw.post(f"/models/mtcars/versions/{alias}/predict", json=ROWS)
        assert reply.status_code == 200, reply.text
        assert reply.json()["version"] == version
        want = r_predict(store, "mtcars", ROWS, version=version)
        for got, expected in zip(reply.json()["predictions"], want, strict=True):
            assert abs(got - expected) <= 1e-12 * abs(expected)
    one = gw.post("/models/mtcars/versions/1/predict", json=ROWS).json()["predictions"]
    two = gw.post("/models/mtcars/versions/2/predict", json=ROWS).json()["predictions"]
    assert one != two


def test_unversioned_traffic_splits_70_30_and_routing_keys_stick(gw: Stack) -> None:
    n = 400
    versions = [gw.post("/models/mtcars/predict", json=ROWS[:1]).json()["version"] for _ in range(n)]
    share = versions.count("2") / n
    assert abs(share - 0.30) < 5 * math.sqrt(0.3 * 0.7 / n)
    for key in ("alice", "bob", "carol", "dave"):
        seen = {gw.post("/models/mtcars/predict", json=ROWS[:1], headers={"X-Routing-Key": key}).json()["version"]
                for _ in range(5)}
        assert len(seen) == 1
