"""Configuration: one TOML file, GATEWAY_* overrides, every mistake a ConfigError at start."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.backends import KINDS
from gateway.errors import ConfigError
from gateway.settings import ModelSettings, ServerSettings, load_settings, settings_from_dict


def write_config(directory: Path, text: str) -> Path:
    path = directory / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def build(raw: dict[str, Any], tmp_path: Path) -> Any:
    return settings_from_dict(raw, base_dir=tmp_path)


def test_an_empty_config_gives_the_dataclass_defaults(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, ""), env={})
    assert settings.server == ServerSettings()
    assert settings.store.path == "store"
    assert settings.models == {}
    assert settings.base_dir == tmp_path.resolve()
    assert settings.config_path == (tmp_path / "gateway.toml").resolve()


def test_a_model_table_takes_model_defaults_for_what_it_omits(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, '[models.iris]\nbackend = "python"\nworkers = 3\n'), env={})
    iris = settings.models["iris"]
    expected = dataclasses.replace(ModelSettings(name="iris"), workers=3)
    assert iris == expected
    assert iris.version == "latest" and iris.trusted is False and iris.optional is False


def test_env_overrides_a_server_key_and_converts_its_type(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server]\nport = 8081\n")
    assert load_settings(config, env={}).server.port == 8081
    settings = load_settings(config, env={"GATEWAY_SERVER__PORT": "9000", "GATEWAY_SERVER__TIMEOUT_S": "300.5"})
    assert settings.server.port == 9000
    assert settings.server.timeout_s == 300.5


def test_env_overrides_a_model_key_and_can_create_a_model(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[models.iris]\nbackend = "plumber"\nworkers = 2\n')
    env = {
        "GATEWAY_MODELS__IRIS__WORKERS": "4",
        "GATEWAY_MODELS__IRIS__OPTIONAL": "true",
        "GATEWAY_MODELS__CHURN__TRUSTED": "1",
        "GATEWAY_MODELS__CHURN__BATCH__MAX_SIZE": "8",
    }
    settings = load_settings(config, env=env)
    assert settings.models["iris"].workers == 4
    assert settings.models["iris"].optional is True
    assert settings.models["iris"].backend == "plumber"  # untouched keys keep the file's value
    assert settings.models["churn"].trusted is True
    assert settings.models["churn"].batch.max_size == 8


def test_env_variables_outside_the_scheme_are_ignored(tmp_path: Path) -> None:
    env = {"GATEWAY_CONFIG": "elsewhere.toml", "SERVER__PORT": "1", "HOME": "/root"}
    assert load_settings(write_config(tmp_path, ""), env=env).server.port == ServerSettings().port


def test_an_unknown_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path, "[srever]\nport = 1\n"), env={})
    message = str(info.value)
    assert "'srever'" in message
    for known in ("server", "store", "models"):
        assert known in message


def test_an_unknown_key_is_named_with_the_known_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path, "[server]\nprot = 9000\n"), env={})
    message = str(info.value)
    assert "server.prot" in message
    for known in (f.name for f in dataclasses.fields(ServerSettings)):
        assert known in message


def test_an_unknown_model_key_is_named_with_the_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build({"models": {"iris": {"worker": 2}}}, tmp_path)
    assert "models.iris.worker" in str(info.value)
    assert "workers" in str(info.value)


def test_an_unknown_key_from_the_environment_is_refused_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.prot: unknown key"):
        load_settings(write_config(tmp_path, ""), env={"GATEWAY_SERVER__PROT": "9000"})


@pytest.mark.parametrize(
    ("where", "bad"),
    [
        ("server.port", "abc"),
        ("server.port", True),
        ("server.host", 127),
        ("server.timeout_s", "soon"),
        ("server.extra_columns", "drop"),
        ("models.iris.trusted", "yes"),
        ("models.iris.workers", [2]),
    ],
)
def test_a_wrong_type_names_the_key_and_the_value(where: str, bad: Any, tmp_path: Path) -> None:
    raw: dict[str, Any] = {}
    *tables, key = where.split(".")
    target = raw
    for table in tables:
        target = target.setdefault(table, {})
    target[key] = bad
    with pytest.raises(ConfigError) as info:
        build(raw, tmp_path)
    assert f"{where}:" in str(info.value)
    assert repr(bad) in str(info.value)


def test_a_wrong_type_from_the_environment_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.port: expected int, got 'abc'"):
        load_settings(write_config(tmp_path, ""), env={"GATEWAY_SERVER__PORT": "abc"})


def test_a_section_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="server must be a table"):
        build({"server": 8080}, tmp_path)
    with pytest.raises(ConfigError, match=r"\[models\.iris\]"):
        build({"models": {"iris": "python"}}, tmp_path)


@pytest.mark.parametrize("name", ["Iris", "2iris", "iris-v2", "_iris", "iris.v2", "x" * 64])
def test_invalid_model_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build({"models": {name: {}}}, tmp_path)
    assert f"models.{name}:" in str(info.value)
    assert "lower-case" in str(info.value)


@pytest.mark.parametrize("name", ["iris", "iris_v2", "m2", "x" * 63])
def test_valid_model_names_are_accepted(name: str, tmp_path: Path) -> None:
    assert list(build({"models": {name: {}}}, tmp_path).models) == [name]


def test_a_model_timeout_too_close_to_the_server_timeout_names_both(tmp_path: Path) -> None:
    raw = {"server": {"timeout_s": 60}, "models": {"slow": {"timeout_s": 50.5}}}
    with pytest.raises(ConfigError) as info:
        build(raw, tmp_path)
    message = str(info.value)
    assert "models.slow.timeout_s = 50.5" in message
    assert "server.timeout_s = 60" in message


def test_a_model_timeout_exactly_10_s_below_the_server_timeout_is_fine(tmp_path: Path) -> None:
    raw = {"server": {"timeout_s": 60}, "models": {"slow": {"timeout_s": 50}}}
    assert build(raw, tmp_path).models["slow"].timeout_s == 50.0


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"server": {"port": 0}}, "server.port: 0 is not a TCP port"),
        ({"server": {"port": 70000}}, "server.port: 70000 is not a TCP port"),
        ({"server": {"workers": 0}}, "server.workers"),
        ({"server": {"body_limit_bytes": 10}}, "server.body_limit_bytes"),
        ({"models": {"iris": {"workers": 0}}}, "models.iris.workers must be at least 1"),
        ({"models": {"iris": {"batch": {"max_size": 0}}}}, "models.iris.batch"),
    ],
)
def test_out_of_range_values_are_refused(raw: dict[str, Any], fragment: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build(raw, tmp_path)
    assert fragment in str(info.value)


def test_a_missing_script_names_the_resolved_path(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[models.cars]\nbackend = "plumber"\nscript = "api/plumber.R"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert "models.cars.script" in str(info.value)
    assert str(tmp_path.resolve() / "api" / "plumber.R") in str(info.value)


def test_a_script_resolves_against_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "plumber.R").write_text("# an API\n")
    config = write_config(tmp_path, '[models.cars]\nbackend = "plumber"\nscript = "api/plumber.R"\n')
    settings = load_settings(config, env={})
    assert settings.resolve(settings.models["cars"].script or "") == tmp_path.resolve() / "api" / "plumber.R"


def test_a_script_needs_the_plumber_backend(tmp_path: Path) -> None:
    (tmp_path / "plumber.R").write_text("# an API\n")
    with pytest.raises(ConfigError, match=r'models\.cars\.script needs backend = "plumber"'):
        KINDS.check_settings(build({"models": {"cars": {"script": "plumber.R"}}}, tmp_path))


def test_a_relative_store_path_resolves_against_the_config_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(write_config(config_dir, '[store]\npath = "models/store"\n[server]\nrun_dir = "r"\n'),
                             env={})
    assert settings.store_path == config_dir.resolve() / "models" / "store"
    assert settings.run_dir == config_dir.resolve() / "r"


def test_an_absolute_store_path_is_kept(tmp_path: Path) -> None:
    absolute = tmp_path / "abs" / "store"
    settings = load_settings(write_config(tmp_path, f'[store]\npath = "{absolute}"\n'), env={})
    assert settings.store_path == absolute


def test_without_a_file_paths_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, env={"GATEWAY_STORE__PATH": "s"})
    assert settings.config_path is None
    assert settings.store_path == tmp_path.resolve() / "s"


def test_a_duplicate_model_table_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[models.iris]\nworkers = 1\n\n[models.iris]\nworkers = 2\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    message = str(info.value)
    assert str(config.resolve()) in message
    assert "iris" in message


def test_invalid_toml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server\nport = 1\n")
    with pytest.raises(ConfigError, match=re.escape(str(config.resolve()))):
        load_settings(config, env={})


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml", env={})


def test_a_fraction_in_an_integer_key_is_refused_not_truncated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.workers.*2\.7"):
        load_settings(write_config(tmp_path, "[server]\nworkers = 2.7\n"), env={})


def test_an_env_override_below_a_plain_value_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[server]\nport = 8081\n")
    with pytest.raises(ConfigError, match=r"GATEWAY_SERVER__PORT__X: server\.port is a value"):
        load_settings(config, env={"GATEWAY_SERVER__PORT__X": "1"})
