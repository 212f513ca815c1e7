"""An optional R model whose artefact is broken: reported not ready with R's words, the rest serves."""

from __future__ import annotations

import shutil
from pathlib import Path

from gateway.runtime import stack
from tests.integration.conftest import start_stack
from tests.integration.r_models import build_r_store

ROWS = [{"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"}]


def test_a_broken_optional_r_model_is_reported_and_the_rest_serves(tmp_path: Path) -> None:
    store = build_r_store(tmp_path / "store")
    broken = store / "broken" / "1"
    shutil.copytree(store / "mtcars" / "1", broken)
    with (broken / "model.rds").open("ab") as handle:  # tampered after its sha256 was recorded
        handle.write(b"\0tampered")
    models = {
        "mtcars": {"backend": "plumber", "workers": 1},
        "broken": {"backend": "plumber", "workers": 1, "optional": True},
    }
    (tmp_path / "stack").mkdir()
    with start_stack(tmp_path / "stack", models, store=store) as running:
        assert running.post("/models/mtcars/predict", json=ROWS).status_code == 200
        doc = running.get("/models/broken").json()
        assert doc["ready"] is False
        assert doc["workers"] == {"live": 0, "total": 1}
        ready = running.get("/readyz").json()["models"]["broken"]
        assert ready["ready"] is False
        assert "sha256" in ready["detail"] and "R said: Error" in ready["detail"]
        reply = running.post("/models/broken/predict", json=ROWS)
        assert reply.status_code == 503
        assert "broken" in reply.json()["detail"]
        states = {info["name"]: info["statename"] for info in stack._rpc(running.run_dir, "getAllProcessInfo")}
        assert states["plumber-broken-1"] == "FATAL"  # gave up after its retries: no restart loop
        assert "sha256" in stack.status(running.run_dir)
