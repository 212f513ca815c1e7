"""One bad model never takes the others down: the registry of a serving process, and the
checks `gateway up` and `reload` run before anything starts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gateway.demo import build_iris
from gateway.errors import ConfigError, Unavailable
from gateway.paths import REPO_ROOT
from gateway.register import register_artefact
from gateway.registry import Registry, build_registry, check_models, pin_versions
from gateway.runtime.plan import make_plan
from gateway.settings import Settings, settings_from_dict


def settings_for(store: Path, tmp_path: Path, models: dict[str, dict[str, Any]]) -> Settings:
    raw = {"server": {"run_dir": str(tmp_path / "run")}, "store": {"path": str(store)}, "models": models}
    (tmp_path / "run").mkdir(exist_ok=True)
    return settings_from_dict(raw, base_dir=tmp_path)


def serving(settings: Settings) -> Registry:
    """What a Gunicorn worker builds (gateway.app.create_app)."""
    return build_registry(settings, make_plan(settings), isolate=True)


def tamper(path: Path) -> None:
    with path.open("ab") as handle:
        handle.write(b"\0")


@pytest.fixture
def store(model_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(model_store, copy)
    return copy


def test_a_changed_byte_marks_only_that_model_not_ready(store: Path, tmp_path: Path) -> None:
    tamper(store / "churn" / "1" / "model.skops")
    registry = serving(settings_for(store, tmp_path, {"iris": {}, "churn": {}}))  # churn is required
    assert registry.get("iris").health().ready is True
    health = registry.get("churn").health()
    assert health.ready is False
    assert health.detail.startswith("failed to load: version 1: ") and "sha256" in health.detail
    with pytest.raises(Unavailable) as info:
        registry.get("churn").backend()
    assert info.value.status == 503 and info.value.model == "churn"
    assert "model 'churn' version 1 failed to load" in info.value.detail and "sha256" in info.value.detail


def test_every_version_the_config_names_is_loaded_at_start(store: Path, tmp_path: Path) -> None:
    tamper(store / "iris" / "1" / "model.skops")
    models = {"iris": {"aliases": {"champion": "2", "old": "1"}}}
    served = serving(settings_for(store, tmp_path, models)).get("iris")
    assert served.named_versions == ["1", "2"]
    health = served.health()
    assert health.ready is False and "version 1: " in health.detail  # before any request asks for it
    assert served.backend("champion").meta.version == "2"  # the good version still serves
    with pytest.raises(Unavailable, match="version 1 failed to load"):
        served.backend("old")


def test_an_unnamed_broken_version_is_a_503_on_use_not_a_500(store: Path, tmp_path: Path) -> None:
    tamper(store / "iris" / "1" / "model.skops")
    served = serving(settings_for(store, tmp_path, {"iris": {}})).get("iris")
    assert served.health().ready is True  # version 1 is not named by the config: not loaded at start
    for _ in range(2):  # the failure is remembered, not retried on every request
        with pytest.raises(Unavailable, match=r"model 'iris' version 1 failed to load: .*sha256"):
            served.backend("1")


def test_up_checks_every_named_version_and_says_why_in_one_line(store: Path, tmp_path: Path) -> None:
    tamper(store / "iris" / "1" / "model.skops")
    settings = settings_for(store, tmp_path, {"iris": {"traffic": {"1": 10, "2": 90}}, "churn": {}})
    with pytest.raises(ConfigError) as info:
        check_models(settings, make_plan(settings))
    message = str(info.value)
    assert message.startswith("model 'iris' version 1: ") and "sha256" in message
    assert "\n" not in message
    optional = settings_for(store, tmp_path, {"iris": {"traffic": {"1": 10, "2": 90}, "optional": True}})
    problems = check_models(optional, make_plan(optional)).problems
    assert list(problems) == ["iris"] and "sha256" in problems["iris"]


def test_a_model_needing_untrusted_types_is_named_at_up(store: Path, tmp_path: Path) -> None:
    meta = store / "iris" / "2" / "model.json"
    meta.write_text(meta.read_text().replace('"format": "skops"', '"format": "joblib"'), encoding="utf-8")
    settings = settings_for(store, tmp_path, {"iris": {}})
    with pytest.raises(ConfigError, match=r"^model 'iris' version 2: .*pickle"):
        check_models(settings, make_plan(settings))


def test_a_worker_restarted_later_serves_the_version_checked_at_up(store: Path, tmp_path: Path) -> None:
    settings = settings_for(store, tmp_path, {"iris": {}})
    plan = make_plan(settings)
    pin_versions(plan, check_models(settings, plan))  # what `gateway up` does
    build_iris(store)  # version 3, registered later, and broken
    tamper(store / "iris" / "3" / "model.skops")
    served = serving(settings).get("iris")
    assert served.current == "2" and served.health().ready is True
    with pytest.raises(ConfigError, match="version 3"):  # `gateway reload` would refuse it
        check_models(settings, plan)


def test_the_strict_build_still_refuses_a_required_broken_model(store: Path, tmp_path: Path) -> None:
    tamper(store / "churn" / "1" / "model.skops")
    settings = settings_for(store, tmp_path, {"iris": {}, "churn": {}})
    with pytest.raises(ConfigError, match=r"^model 'churn': version 1: "):
        build_registry(settings, make_plan(settings))


def test_a_changed_file_beside_a_registered_script_is_refused_by_up_and_by_r(tmp_path: Path) -> None:
    source = tmp_path / "cars"
    shutil.copytree(REPO_ROOT / "plumber" / "cars", source)
    store = tmp_path / "store"
    version = register_artefact(store, "cars", source / "plumber.R", None)
    directory = store / "cars" / version
    settings = settings_for(store, tmp_path, {"cars": {"backend": "plumber", "workers": 1}})
    assert check_models(settings, make_plan(settings)).problems == {}
    env = {**os.environ, "R_LIBS": str(REPO_ROOT / ".rlib")}
    check = ["Rscript", "-e", "gatewayr:::check_script_dir(commandArgs(TRUE)[1])", str(directory / "plumber.R")]
    assert subprocess.run(check, env=env, capture_output=True, text=True).returncode == 0  # R agrees
    (directory / "coefficients.csv").write_text("changed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^model 'cars' version 1: .*tree_sha256"):
        check_models(settings, make_plan(settings))
    refused = subprocess.run(check, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "a file changed after the script was registered" in refused.stderr
