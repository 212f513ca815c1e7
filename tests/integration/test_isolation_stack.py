"""One bad model never takes the others down, through a live stack: at `gateway up`, after a
Gunicorn worker restart, and on `gateway reload`. And the estimator families whose skops files
hold types skops does not trust by default serve, registered from Python, with no `trusted`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression

from gateway.cli import main
from gateway.register import register_model
from gateway.runtime import stack
from gateway.runtime.plan import free_ports
from gateway.runtime.tomlwrite import dump_toml
from gateway.store import sha256_of
from tests.integration.conftest import Stack, start_stack

WAIT_S = 90.0


def training_frame(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])


def families() -> dict[str, tuple[Any, pd.DataFrame]]:
    """name → (fitted estimator, rows to predict); HistGradientBoosting gets NaNs, as it allows."""
    frame = training_frame()
    label = np.where(frame["a"] + frame["b"] > 0, "yes", "no")
    with_nan = frame.copy()
    with_nan.loc[::7, "b"] = np.nan
    return {
        "gb": (GradientBoostingClassifier(n_estimators=10, random_state=0).fit(frame, label), frame),
        "rf": (RandomForestRegressor(n_estimators=10, random_state=0).fit(frame, frame["c"] * 2), frame),
        "hgb": (HistGradientBoostingRegressor(max_iter=10).fit(with_nan, frame["c"]), with_nan),
        "iso": (IsolationForest(n_estimators=10, random_state=0).fit(frame), frame),
    }


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else float(v)) for k, v in row.items()} for row in frame.to_dict("records")]


def flip_one_byte(path: Path) -> bytes:
    """Change one byte in the middle of a file; returns the original bytes."""
    original = path.read_bytes()
    middle = len(original) // 2
    path.write_bytes(original[:middle] + bytes([original[middle] ^ 0xFF]) + original[middle + 1:])
    return original


def restart_gunicorn_worker(running: Stack) -> None:
    """SIGKILL the (one) Gunicorn worker and wait until its replacement has loaded the app."""
    master = running.pids()["gunicorn"]
    old = running.gunicorn_workers()
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + WAIT_S
    while not {p.pid for p in stack._ready_workers(running.run_dir, master)} - old:
        assert time.monotonic() < deadline, "Gunicorn did not replace its worker"
        assert stack._supervisord_pid(running.run_dir) is not None
        time.sleep(0.1)
    running.remember()


def reload_cli(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["--config", str(config), "reload"])
    return code, capsys.readouterr().err.splitlines()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, Any]]]:
    directory = tmp_path_factory.mktemp("isolation")
    store = directory / "store"
    fams = families()
    for name, (estimator, rows) in fams.items():
        register_model(estimator, name, rows, store=store)
    frame = training_frame()
    iris = LogisticRegression().fit(frame, np.where(frame["a"] > 0, "up", "down"))
    register_model(iris, "good", frame, store=store)
    register_model(iris, "wine", frame, store=store)
    # Registered before types were recorded: optional, so `up` starts without it, and says why.
    legacy = store / "legacy" / register_model(fams["gb"][0], "legacy", frame, store=store)
    meta = json.loads((legacy / "model.json").read_text())
    del meta["trusted_types"], meta["skops_types_recorded"]  # model.json from before either existed
    (legacy / "model.json").write_text(json.dumps(meta))
    models = {name: {"backend": "python"} for name in [*fams, "good", "wine"]}
    models["legacy"] = {"backend": "python", "optional": True}
    with start_stack(directory, models, store=store, wait_s=WAIT_S) as running:
        yield running, {"store": store, "families": fams, "rows": records(frame.head(3))}


def test_families_registered_from_python_serve_as_they_predict_locally(live: tuple[Stack, dict[str, Any]]) -> None:
    running, ctx = live
    table = []
    for name, (estimator, rows) in ctx["families"].items():
        reply = running.post(f"/models/{name}/predict", json=records(rows))
        assert reply.status_code == 200, reply.text
        served = reply.json()["predictions"]
        local = estimator.predict(rows).tolist()
        assert served == local, name
        doc = running.get(f"/models/{name}").json()
        assert doc["ready"] is True
        nan_rows = int(rows.isna().any(axis=1).sum())
        table.append(f"{type(estimator).__name__:30} rows {len(local):3}  with NaN {nan_rows:2}  "
                     f"equal to local predict: {served == local}  trusted = true needed: no")
    print("\n" + "\n".join(table))


def test_an_optional_model_with_untrusted_types_is_not_ready_at_up_and_says_why(
    live: tuple[Stack, dict[str, Any]],
) -> None:
    running, _ = live
    detail = running.get("/readyz").json()["models"]["legacy"]["detail"]
    assert "skops types not trusted: sklearn.tree._tree.Tree" in detail and "Trusting a model" in detail
    assert running.post("/models/good/predict", json=[{"a": 1.0, "b": 0.0, "c": 0.0}]).status_code == 200


def test_a_changed_byte_and_a_worker_restart_take_down_only_that_model(
    live: tuple[Stack, dict[str, Any]],
) -> None:
    running, ctx = live
    artefact = ctx["store"] / "wine" / "1" / "model.skops"
    original = flip_one_byte(artefact)
    try:
        master = running.pids()["gunicorn"]
        restart_gunicorn_worker(running)
        # The same master (STARTING until supervisord's startsecs pass after `up`, never FATAL).
        states = {info["name"]: info["statename"] for info in stack._rpc(running.run_dir, "getAllProcessInfo")}
        assert states["gunicorn"] in ("STARTING", "RUNNING") and running.pids()["gunicorn"] == master
        for name in ["good", *ctx["families"]]:
            assert running.post(f"/models/{name}/predict", json=ctx["rows"]).status_code == 200, name
        reply = running.post("/models/wine/predict", json=ctx["rows"])
        assert reply.status_code == 503
        problem = reply.json()
        assert problem["model"] == "wine" and "version 1 failed to load" in problem["detail"]
        assert "sha256" in problem["detail"]
        mlflow = running.post("/models/wine/invocations", json={"dataframe_records": ctx["rows"]})
        assert mlflow.status_code == 503 and "sha256" in mlflow.json()["message"]  # MLflow's envelope
        v2 = running.post("/v2/models/wine/infer", json={"inputs": [
            {"name": c, "shape": [1], "datatype": "FP64", "data": [1.0]} for c in "abc"]})
        assert v2.status_code == 503 and "sha256" in v2.json()["error"]  # v2's envelope
        ready = running.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["models"]["wine"]["ready"] is False and "sha256" in ready.json()["models"]["wine"]["detail"]
        assert ready.json()["models"]["good"] == {"ready": True}
        doc = running.get("/models/wine")
        assert doc.status_code == 200 and doc.json()["ready"] is False and "sha256" in doc.json()["detail"]
        status = stack.status(running.run_dir)
        assert "wine: failed to load: version 1: " in status and "sha256" in status
    finally:
        artefact.write_bytes(original)
    assert sha256_of(artefact) == json.loads((artefact.parent / "model.json").read_text())["sha256"]


def test_reload_refuses_a_new_version_or_a_model_that_cannot_load_and_keeps_serving(
    live: tuple[Stack, dict[str, Any]], capsys: pytest.CaptureFixture[str],
) -> None:
    running, ctx = live
    config = running.settings.config_path
    assert config is not None
    raw = tomllib.loads(config.read_text())
    master = running.pids()["gunicorn"]
    workers = running.gunicorn_workers()
    # A new version of `good` whose artefact cannot load: the reload changes nothing.
    frame = training_frame()
    bad = register_model(LogisticRegression().fit(frame, frame["a"] > 0), "good", frame, store=ctx["store"])
    flip_one_byte(ctx["store"] / "good" / bad / "model.skops")
    code, err = reload_cli(config, capsys)
    assert code != 0
    assert len(err) == 1 and err[0].startswith(f"gateway: config error: model 'good' version {bad}: ")
    assert "sha256" in err[0]
    assert running.post("/models/good/predict", json=ctx["rows"]).json()["version"] == "1"
    assert running.gunicorn_workers() == workers and running.pids()["gunicorn"] == master
    # A model added by the reload that cannot load (untrusted types): refused the same way.
    original = config.read_text()
    raw["models"]["good"]["version"] = "1"
    raw["models"]["newbie"] = {"backend": "python"}
    shutil.copytree(ctx["store"] / "legacy", ctx["store"] / "newbie")
    meta_path = ctx["store"] / "newbie" / "1" / "model.json"
    meta_path.write_text(meta_path.read_text().replace('"name": "legacy"', '"name": "newbie"'))
    config.write_text(dump_toml(raw))
    code, err = reload_cli(config, capsys)
    assert code != 0 and len(err) == 1
    assert err[0].startswith("gateway: config error: model 'newbie' version 1: skops types not trusted: "
                             "sklearn.tree._tree.Tree; see docs/security.md \"Trusting a model\"")
    assert running.get("/models/newbie").status_code == 404  # not added
    # A worker restarted now still serves what `up` checked, not the newest stored version.
    restart_gunicorn_worker(running)
    reply = running.post("/models/good/predict", json=ctx["rows"])
    assert (reply.status_code, reply.json()["version"]) == (200, "1")
    assert running.get("/readyz").json()["models"]["wine"] == {"ready": True}  # its byte was restored
    # Once the config names only what can load, the reload goes through.
    del raw["models"]["newbie"]
    config.write_text(dump_toml(raw))
    assert reload_cli(config, capsys) == (0, [])
    assert running.post("/models/good/predict", json=ctx["rows"]).json()["version"] == "1"
    config.write_text(original)


def write_config(directory: Path, models: dict[str, dict[str, Any]]) -> Path:
    (port,) = free_ports(1)
    raw = {"server": {"port": port, "workers": 1, "run_dir": str(directory / "run")},
           "store": {"path": str(directory / "store")}, "models": models}
    config = directory / "gateway.toml"
    config.write_text(dump_toml(raw), encoding="utf-8")
    return config


def test_up_with_a_required_model_that_is_not_trusted_says_why_first_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    frame = training_frame()
    model = GradientBoostingClassifier(n_estimators=3).fit(frame, frame["a"] > 0)
    version = register_model(model, "wine", frame, store=tmp_path / "store")
    meta_path = tmp_path / "store" / "wine" / version / "model.json"
    # A model.json from before registration recorded the file's types: `up` scans the file.
    meta_path.write_text(meta_path.read_text().replace('"trusted_types"', '"was_trusted"')
                         .replace('"skops_types_recorded"', '"was_recorded"'))
    config = write_config(tmp_path, {"wine": {"backend": "python"}})
    assert main(["--config", str(config), "up", "--detach"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["gateway: config error: model 'wine' version 1: skops types not trusted: "
                   "sklearn.tree._tree.Tree; see docs/security.md \"Trusting a model\""]
    assert not (tmp_path / "run" / "supervisord.pid").exists()


def test_up_with_a_required_model_only_a_worker_cannot_load_says_why_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    frame = training_frame()
    store = tmp_path / "store"
    register_model(LogisticRegression().fit(frame, frame["a"] > 0), "good", frame, store=store)
    version = register_model(LogisticRegression().fit(frame, frame["a"] > 0), "bad", frame, store=store,
                             fmt="joblib")
    artefact = store / "bad" / version / "model.joblib"
    artefact.write_bytes(b"not a pickle")  # and its sha256 recorded: only loading it can tell
    meta_path = artefact.parent / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = sha256_of(artefact)
    meta_path.write_text(json.dumps(meta))
    config = write_config(tmp_path, {"good": {"backend": "python"}, "bad": {"backend": "python", "trusted": True}})
    started = time.monotonic()
    assert main(["--config", str(config), "up", "--detach"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("gateway: model 'bad': failed to load: version 1: model.joblib could not be loaded")
    assert any(line.startswith("supervisorctl status:") for line in err[1:])  # then the diagnostics
    assert time.monotonic() - started < WAIT_S  # found at once, not by waiting for readiness
    assert stack._supervisord_pid(tmp_path / "run") is None
