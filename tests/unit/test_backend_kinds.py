"""The registry of backend kinds: the one list the config, plan, renderers and registry ask."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.backends import KINDS
from gateway.backends.base import Forwarder
from gateway.backends.kinds import BackendKind, KindRegistry, Resolved
from gateway.backends.plumber import PlumberPool, ScriptPool
from gateway.errors import ConfigError
from gateway.settings import settings_from_dict


def test_every_kind_is_registered_once_with_its_language() -> None:
    assert {kind.name: kind.language for kind in KINDS} == {
        "python": "python", "onnx": "python", "plumber": "r", "rpy2": "r",
    }
    assert [kind.name for kind in KINDS if kind.r_pool] == ["plumber"]


def test_a_second_kind_of_the_same_name_is_refused() -> None:
    def build(*_: object) -> Resolved:
        return Resolved("1", ["1"])

    kind = BackendKind(name="dup", language="python", summary="", build=build)
    with pytest.raises(ValueError, match="'dup' is registered twice"):
        KindRegistry([kind, kind])
    with pytest.raises(ValueError, match=r"keys \['gpu'\] are not \[models\] keys"):
        KindRegistry([BackendKind(name="gpu", language="python", summary="", build=build, keys=("gpu",))])


def test_an_unknown_backend_names_the_key_the_value_and_the_kinds(tmp_path: Path) -> None:
    settings = settings_from_dict({"models": {"iris": {"backend": "torch"}}}, base_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        KINDS.check_settings(settings)
    assert str(info.value) == "models.iris.backend: 'torch' is not one of onnx, plumber, python, rpy2"


@pytest.mark.parametrize("backend", ["python", "rpy2", "onnx"])
def test_a_key_of_another_kind_is_refused(backend: str, tmp_path: Path) -> None:
    settings = settings_from_dict({"models": {"m": {"backend": backend, "hosts": ["10.0.0.2:8081"]}}},
                                  base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r'models\.m\.hosts needs backend = "plumber"'):
        KINDS.check_settings(settings)


def test_only_the_script_pool_passes_requests_through() -> None:
    assert issubclass(ScriptPool, Forwarder)
    assert not issubclass(PlumberPool, Forwarder)
