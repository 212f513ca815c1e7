"""Rpy2Backend against a real embedded R and real saved models (built by R's save_model).

The expected messages and numbers are computed, not written down: validation details come
from the Python validator (which the R one must match), predictions from R's own predict().
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.backends.rpy2 import Rpy2Backend, missing_requirements
from gateway.codecs import Table, validate_table
from gateway.errors import ConfigError, GatewayTimeout, InvalidInput, ModelError
from gateway.paths import REPO_ROOT
from gateway.registry import build_registry
from gateway.runtime.plan import Endpoint, Plan
from gateway.settings import ModelSettings, settings_from_dict
from gateway.store import ModelStore
from tests.integration.r_models import FUNCTION_MODELS, r_env, r_predict, rscript

ROWS = [
    {"wt": 2.62, "hp": 110, "cyl": 6, "am": "manual"},
    {"wt": 3.215, "hp": 110, "cyl": 6, "am": "auto"},
    {"wt": 0.123456789012, "hp": 245, "cyl": 8, "am": "auto"},
]
# Computes for x seconds. (R's time limit is checked while R computes, not inside Sys.sleep.)
BUSY = "function(newdata, type) { end <- Sys.time() + newdata$x[1]; while (Sys.time() < end) NULL; newdata$x }"


@pytest.fixture(scope="module")
def r_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("rpy2") / "store"
    subprocess.run(["Rscript", str(REPO_ROOT / "demo" / "build_r_models.R"), str(store)], env=r_env(),
                   check=True, capture_output=True, timeout=120)
    for name, source in {"fragile": FUNCTION_MODELS["fragile"], "busy": BUSY}.items():
        rscript(f"gatewayr::save_model({source}, commandArgs(TRUE)[1], '{name}', "
                "sample = data.frame(x = c(1.5, 2)))", str(store))
    return store


def backend(store: Path, name: str, timeout_s: float = 30.0) -> Rpy2Backend:
    models = ModelStore(store)
    meta = models.read_meta(name, "1")
    served = Rpy2Backend(meta, models.version_dir(name, "1"),
                         ModelSettings(name=name, backend="rpy2", timeout_s=timeout_s))
    served.load()
    return served


@pytest.fixture(scope="module")
def mtcars(r_store: Path) -> Rpy2Backend:
    return backend(r_store, "mtcars")


def validated(served: Rpy2Backend, rows: list[dict[str, Any]]) -> Table:
    return validate_table(Table.from_records(rows), served.meta.inputs, served.meta.name)


def test_predictions_equal_rs_own_predict(mtcars: Rpy2Backend, r_store: Path) -> None:
    got = mtcars.predict(validated(mtcars, ROWS), {"type": "response"})
    assert got == r_predict(r_store, "mtcars", ROWS)
    assert mtcars.health().ready


def test_one_row_is_a_list_of_one(mtcars: Rpy2Backend, r_store: Path) -> None:
    assert mtcars.predict(validated(mtcars, ROWS[:1]), {}) == r_predict(r_store, "mtcars", ROWS[:1])


@pytest.mark.parametrize(
    "rows",
    [
        [{"hp": 110, "cyl": 6, "am": "manual"}],
        [{"wt": 2.6, "hp": 110, "cyl": 6, "am": "semi"}],
        [ROWS[0], {"wt": "heavy", "hp": 110, "cyl": 6, "am": "auto"}],
        [{"wt": 2.6, "hp": 110, "cyl": 4.5, "am": "auto"}],
        [],
    ],
    ids=["missing column", "unknown level", "wrong type", "fraction in integer", "empty batch"],
)
def test_r_validates_like_the_python_validator(mtcars: Rpy2Backend, rows: list[dict[str, Any]]) -> None:
    """Unvalidated rows straight to R: R's validator must give Python's status and words."""
    with pytest.raises(InvalidInput) as python_says:
        validated(mtcars, rows)
    with pytest.raises(InvalidInput) as r_says:
        mtcars.predict(Table.from_records(rows), {})
    assert (r_says.value.status, r_says.value.detail) == (422, python_says.value.detail)
    assert r_says.value.model == "mtcars"


def test_r_stop_is_a_422_model_error_with_rs_words_and_r_serves_on(r_store: Path) -> None:
    fragile = backend(r_store, "fragile")
    with pytest.raises(ModelError) as caught:
        fragile.predict(validated(fragile, [{"x": 1.0}, {"x": -3.0}]), {})
    assert (caught.value.status, caught.value.detail) == (422, "x must be non-negative, got -3")
    assert fragile.predict(validated(fragile, [{"x": 1.25}]), {}) == [2.5]


def test_a_model_slower_than_its_timeout_is_stopped_by_r_as_a_504(r_store: Path) -> None:
    slow = backend(r_store, "busy", timeout_s=0.5)
    with pytest.raises(GatewayTimeout, match=r"timeout of 0\.5 s"):
        started = time.monotonic()
        slow.predict(validated(slow, [{"x": 5.0}]), {})
    assert time.monotonic() - started < 2.0  # R stopped itself; it did not run the 5 s
    assert slow.predict(validated(slow, [{"x": 0.01}]), {}) == [0.01]  # the time limit is gone again


def test_eight_threads_predicting_at_once_get_their_own_answers(mtcars: Rpy2Backend, r_store: Path) -> None:
    batches = [[{**ROWS[i % 3], "wt": 1.5 + 0.25 * i + 0.001 * k} for k in range(1 + 7 * i)] for i in range(8)]
    expected = [r_predict(r_store, "mtcars", rows) for rows in batches]
    results: dict[int, list[list[Any]]] = {i: [] for i in range(8)}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def client(i: int) -> None:
        try:
            start.wait()
            for _ in range(25):
                results[i].append(mtcars.predict(validated(mtcars, batches[i]), {}))
        except BaseException as exc:  # reported below: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    for i in range(8):
        assert results[i] == [expected[i]] * 25


def test_unload_releases_the_model(r_store: Path) -> None:
    served = backend(r_store, "mtcars")
    served.unload()
    assert not served.health().ready


def plan_for(tmp_path: Path) -> Plan:
    here = Endpoint("127.0.0.1", 1)
    return Plan(run_dir=str(tmp_path), public=here, gunicorn=here, internal=here, pools={})


def test_registry_serves_an_r_model_in_process(r_store: Path, tmp_path: Path) -> None:
    assert missing_requirements() is None
    settings = settings_from_dict({"store": {"path": str(r_store)}, "models": {"mtcars": {"backend": "rpy2"}}},
                                  base_dir=tmp_path)
    served = build_registry(settings, plan_for(tmp_path)).get("mtcars")
    assert (served.current, served.backend().kind, served.health().ready) == ("1", "rpy2", True)


def test_a_python_artefact_is_refused_at_start(model_store: Path, tmp_path: Path) -> None:
    settings = settings_from_dict({"store": {"path": str(model_store)}, "models": {"iris": {"backend": "rpy2"}}},
                                  base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"serves saved R models"):
        build_registry(settings, plan_for(tmp_path), load=False)


def test_without_r_start_fails_saying_what_to_install_unless_optional(
    r_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no R on the PATH
    monkeypatch.delenv("R_HOME", raising=False)
    models = {"mtcars": {"backend": "rpy2"}}
    settings = settings_from_dict({"store": {"path": str(r_store)}, "models": models}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"models\.mtcars: .*apt-get install --no-install-recommends r-base-core"):
        build_registry(settings, plan_for(tmp_path), load=False)
    models["mtcars"]["optional"] = True
    settings = settings_from_dict({"store": {"path": str(r_store)}, "models": models}, base_dir=tmp_path)
    served = build_registry(settings, plan_for(tmp_path)).get("mtcars")
    assert not served.health().ready
    assert "r-base-core" in served.health().detail


def test_a_changed_artefact_fails_at_load_in_rs_words(r_store: Path, tmp_path: Path) -> None:
    shutil.copytree(r_store / "mtcars", tmp_path / "mtcars")
    with (tmp_path / "mtcars" / "1" / "model.rds").open("ab") as artefact:
        artefact.write(b"\0")
    with pytest.raises(ConfigError) as caught:
        backend(tmp_path, "mtcars")
    message = str(caught.value)
    assert message.startswith("model 'mtcars' version 1 (backend \"rpy2\"): R could not load")
    assert "the artefact changed after it was saved" in message  # gatewayr::load_model's words


def test_children_of_a_process_running_r_still_load_their_own_python(mtcars: Rpy2Backend) -> None:
    """rpy2 puts R's library path into LD_LIBRARY_PATH; a child would load the system libpython."""
    assert "/usr/lib/R/lib" not in os.environ.get("LD_LIBRARY_PATH", "")
    child = subprocess.run([sys.executable, "-c", "import ssl"], capture_output=True, text=True, check=False)
    assert child.returncode == 0, child.stderr


def test_with_tracing_on_the_embedded_rs_phases_are_child_spans(mtcars: Rpy2Backend) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from gateway import tracing

    exporter = InMemorySpanExporter()
    tracing.configure([exporter], batch=False)
    try:
        with tracing.span("gateway.backend"):
            mtcars.predict(validated(mtcars, ROWS), {})
    finally:
        tracing.shutdown()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    r_side = spans["r.handle"]
    assert r_side.attributes is not None and r_side.attributes["gateway.r.where"] == "rpy2"
    assert r_side.parent is not None and r_side.parent.span_id == spans["gateway.backend"].context.span_id
    phases = sorted((s for s in spans.values() if s.parent is not None and s.parent.span_id == r_side.context.span_id),
                    key=lambda s: s.start_time or 0)
    assert [s.name for s in phases] == ["r.parse", "r.validate", "r.predict", "r.encode"]
