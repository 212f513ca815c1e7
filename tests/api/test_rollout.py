"""Aliases, weighted traffic, sticky routing keys and shadow traffic through the app."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from tests.api.conftest import check_config, make_app

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
ROLLOUT = {
    "backend": "python",
    "aliases": {"champion": "1", "challenger": "2"},
    "traffic": {"champion": 90, "challenger": 10},
}


def test_a_90_10_split_serves_each_version_its_share(model_store: Path, tmp_path: Path) -> None:
    client = make_app(model_store, tmp_path, {"iris": ROLLOUT}).test_client()
    n = 2000
    versions = [client.post("/models/iris/predict", json=[ROW]).get_json()["version"] for _ in range(n)]
    share = versions.count("2") / n
    assert set(versions) == {"1", "2"}
    assert abs(share - 0.10) < 5 * math.sqrt(0.1 * 0.9 / n)


def test_a_routing_key_always_lands_on_the_same_version(model_store: Path, tmp_path: Path) -> None:
    client = make_app(model_store, tmp_path, {"iris": ROLLOUT}).test_client()
    seen: dict[str, set[str]] = {}
    for i in range(60):
        for _ in range(4):
            reply = client.post("/models/iris/predict", json=[ROW], headers={"X-Routing-Key": f"session-{i}"})
            seen.setdefault(f"session-{i}", set()).add(reply.get_json()["version"])
    assert all(len(versions) == 1 for versions in seen.values())


def test_an_alias_names_a_version_in_the_url(model_store: Path, tmp_path: Path) -> None:
    client = make_app(model_store, tmp_path, {"iris": ROLLOUT}).test_client()
    assert client.post("/models/iris/versions/challenger/predict", json=[ROW]).get_json()["version"] == "2"
    assert client.post("/models/iris/versions/champion/predict", json=[ROW]).get_json()["version"] == "1"
    doc = client.get("/models/iris").get_json()
    assert doc["aliases"] == {"champion": "1", "challenger": "2"}
    assert doc["traffic"] == {"1": 90, "2": 10}


def test_shadow_gets_a_copy_and_never_answers(model_store: Path, tmp_path: Path) -> None:
    shadowed = {"iris": {"backend": "python", "version": "1", "shadow": "2"}}
    client = make_app(model_store, tmp_path, shadowed).test_client()
    for _ in range(20):
        assert client.post("/models/iris/predict", json=[ROW]).get_json()["version"] == "1"
    deadline = time.monotonic() + 10
    while (stats := client.get("/models/iris").get_json()["shadow"])["sent"] < 20:
        assert time.monotonic() < deadline, stats
        time.sleep(0.05)
    assert stats["version"] == "2" and stats["failed"] == 0
    assert stats["agreed"] == 20  # both iris versions are trained alike: same labels


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"aliases": {"champion": "9"}}, "'9' is not a served version"),
        ({"traffic": {"1": 50, "nope": 50}}, "'nope' is not a served version"),
        ({"traffic": {"1": 0}}, "positive sum"),
        ({"shadow": "7"}, "'7' is not a served version"),
    ],
)
def test_rollout_mistakes_stop_the_start(model_store: Path, tmp_path: Path, entry: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        check_config(model_store, tmp_path, {"iris": {"backend": "python", **entry}})
