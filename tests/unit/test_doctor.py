"""`gateway doctor`'s checks one by one, with the host faked where a test cannot change it.

The real runs (this host's R, NGINX and the demo config) are in tests/integration/test_doctor.py.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from gateway import doctor
from gateway.cli import main
from gateway.errors import ConfigError
from gateway.runtime import privileges
from gateway.runtime.plan import free_ports
from gateway.settings import Settings, load_settings, settings_from_dict

APT = "apt-get install -y --no-install-recommends"


def settings(tmp_path: Path, models: dict[str, dict[str, Any]] | None = None, **server: Any) -> Settings:
    (port,) = free_ports(1)
    raw = {"server": {"port": port, "run_dir": "run", **server}, "store": {"path": "store"}, "models": models or {}}
    return settings_from_dict(raw, base_dir=tmp_path)


def store_r_model(store: Path, name: str, packages: dict[str, str]) -> None:
    """A stored R model whose model.json records `packages`, as gatewayr's save_model writes it."""
    version = store / name / "1"
    version.mkdir(parents=True)
    (version / "model.rds").write_bytes(b"")
    meta = {"name": name, "version": "1", "language": "r", "format": "rds", "artefact": "model.rds",
            "inputs": [{"name": "x", "type": "double"}], "outputs": {"kind": "regression"}, "sha256": "",
            "created_at": "2026-12-01T00:00:00Z", "framework": {"r": "4.2.2", "packages": packages}}
    (version / "model.json").write_text(json.dumps(meta), encoding="utf-8")


def test_every_check_function_is_listed() -> None:
    defined = {f for name, f in inspect.getmembers(doctor, inspect.isfunction)
               if name.startswith("check_") and f.__module__ == doctor.__name__}
    assert defined == set(doctor.CHECKS)


def test_nginx_missing_names_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "NGINX", str(tmp_path / "nginx"))
    [problem] = doctor.check_nginx(settings(tmp_path))
    assert problem.fix == f"{APT} nginx-light"
    fake = tmp_path / "nginx"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert doctor.check_nginx(settings(tmp_path)) == []


def test_r_missing_from_path_matters_only_with_an_r_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no Rscript there
    [problem] = doctor.check_r(settings(tmp_path, {"m": {"backend": "plumber"}, "py": {"backend": "python"}}))
    assert "models m are R models" in problem.what and problem.fix == f"{APT} r-base-core"
    assert doctor.check_r(settings(tmp_path, {"py": {"backend": "python"}})) == []


def test_gatewayr_missing_says_gateway_setup_r(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r_config = settings(tmp_path, {"m": {"backend": "rpy2"}})
    assert doctor.check_gatewayr(r_config) == []  # this checkout's .rlib (make deps)
    monkeypatch.setenv("GATEWAY_R_LIBRARY", str(tmp_path / "rlib"))
    [problem] = doctor.check_gatewayr(r_config)
    assert f"gatewayr R package is not installed in {tmp_path / 'rlib'}" in problem.what
    assert problem.fix.startswith("gateway setup r") and problem.level == "warning"
    assert not (tmp_path / "rlib").exists()  # doctor only looks


def test_each_missing_recorded_package_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_r_model(tmp_path / "store", "a", {"randomForest": "4.7", "stats": "4.2.2"})
    store_r_model(tmp_path / "store", "b", {"randomForest": "4.7"})
    asked: list[list[str]] = []

    def fake_r(args: list[str], refusal: str | None = None, *, install: bool = True) -> str:
        assert not install  # doctor never installs gatewayr
        asked.append(args[2:])
        return "randomForest \n"

    monkeypatch.setattr(doctor, "run_rscript", fake_r)
    [problem] = doctor.check_model_packages(
        settings(tmp_path, {"a": {"backend": "plumber"}, "b": {"backend": "rpy2"}}))
    assert asked == [["randomForest", "stats"]]
    assert problem.what == "R package 'randomForest' is not installed (needed by a, b)"
    assert problem.fix == f"{APT} r-cran-randomforest"


def test_script_problems_keep_their_words_and_get_the_apt_fix(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "plumber.R"
    script.write_text("library(notapkg)\n")
    said = ("model 's' needs the R package 'notapkg' (for library() in plumber.R), which is not installed; "
            "install the Debian package: apt-get install r-cran-notapkg")

    def fake_check(scripts: dict[str, Path]) -> None:
        assert scripts == {"s": script}
        raise ConfigError(said)

    monkeypatch.setattr(doctor, "check_script_packages", fake_check)
    [problem] = doctor.check_script_deps(settings(tmp_path, {"s": {"backend": "plumber", "script": str(script)}}))
    assert problem.what == said.split("; install")[0]
    assert problem.fix == f"{APT} r-cran-notapkg"


def test_a_model_missing_from_the_store(tmp_path: Path) -> None:
    [problem] = doctor.check_store(settings(tmp_path, {"iris": {"backend": "python"}}))
    assert "'iris' has no versions" in problem.what and "gateway register iris" in problem.fix


def test_python_modules_per_configured_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    both = settings(tmp_path, {"r": {"backend": "rpy2"}, "o": {"backend": "onnx"}})
    real = doctor.importlib.util.find_spec
    monkeypatch.setattr(doctor.importlib.util, "find_spec", lambda name: None if name == "rpy2" else real(name))
    [problem] = doctor.check_python_modules(both)
    assert "rpy2" in problem.what and problem.fix.endswith("pip install rpy2")
    assert doctor.check_python_modules(settings(tmp_path, {"p": {"backend": "python"}})) == []


def test_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        [problem] = doctor.check_port(settings(tmp_path, port=port))
        assert f"port 127.0.0.1:{port} is taken" in problem.what
    assert doctor.check_port(settings(tmp_path, port=port)) == []


def test_a_port_held_by_this_config_s_own_stack_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "supervisord.pid").write_text(f"{os.getpid()}\n")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        config = settings(tmp_path, port=holder.getsockname()[1])
        assert len(doctor.check_port(config)) == 1  # a stale pid file (not a supervisord) changes nothing
        monkeypatch.setattr(doctor.procs, "is_running", lambda pid, name: pid == os.getpid())
        assert doctor.check_port(config) == []


def test_user_problems_come_from_privileges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(s: Settings) -> None:
        raise privileges.PrivilegeError("server.user: no system user 'gw'; create them with `make deps`")

    monkeypatch.setattr(privileges, "accounts", missing)
    [problem] = doctor.check_users(settings(tmp_path))
    assert problem.what == "server.user: no system user 'gw'" and problem.fix == "create them with `make deps`"
    monkeypatch.setattr(privileges, "accounts", lambda s: None)  # not root: nothing to drop to
    assert doctor.check_users(settings(tmp_path)) == []


def test_a_world_readable_run_dir(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir(mode=0o755)
    (tmp_path / "run").chmod(0o755)
    [problem] = doctor.check_run_dir_mode(settings(tmp_path))
    assert "mode 755" in problem.what and problem.fix == f"chmod o-rwx {tmp_path / 'run'}"
    (tmp_path / "run").chmod(0o750)
    assert doctor.check_run_dir_mode(settings(tmp_path)) == []


def test_low_disk_is_a_warning_and_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor.check_disk(settings(tmp_path)) == []
    monkeypatch.setattr(doctor, "LOW_DISK_BYTES", 1 << 62)
    problems = doctor.check_disk(settings(tmp_path))
    assert [p.level for p in problems] == ["warning", "warning"]  # run dir, store
    monkeypatch.setattr(doctor, "CHECKS", (doctor.check_disk,))
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nrun_dir = "run"\n')
    assert main(["doctor", "--config", str(config)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "doctor: 0 problems, 2 warnings"


def test_init_writes_a_config_that_loads_and_never_overwrites(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "site"
    assert main(["init", str(target)]) == 0
    assert (target / "store").is_dir() and list((target / "store").iterdir()) == []
    assert "export PATH=" in (target / "README.txt").read_text()
    text = (target / "gateway.toml").read_text()
    assert "# [models.iris]" in text and "# port = 8080" in text
    loaded = settings_from_dict({}, base_dir=target)  # the defaults the commented keys name
    config = load_settings(target / "gateway.toml", env={})
    assert config.server == loaded.server and config.models == {}
    assert config.store_path == target / "store"
    capsys.readouterr()
    (target / "gateway.toml").write_text("# mine\n")
    assert main(["init", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gateway.toml exists" in err
    assert (target / "gateway.toml").read_text() == "# mine\n"
