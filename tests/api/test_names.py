"""Model names and versions that could walk the store's directories are refused where they enter."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from gateway.cli import main
from gateway.errors import ConfigError
from gateway.register import register_artefact
from gateway.store import ModelStore

ROW = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]


@pytest.mark.parametrize(("path", "named"), [
    ("/models/..%00/predict", "'..\\x00'"),
    ("/models/Iris/predict", "'Iris'"),
    ("/models/ir%00is/predict", "'ir\\x00is'"),
    ("/models/..%2Fetc/predict", None),  # %2F decodes to '/': no route segment matches
    ("/models/iris/versions/..%00/predict", "'..\\x00'"),
    ("/models/iris/versions/-1/predict", "'-1'"),
    ("/models/iris/versions/%2Fetc%2Fpasswd/predict", None),
    ("/models/iris/versions/2%00/predict", "'2\\x00'"),
])
def test_bad_names_and_versions_in_urls_are_4xx_naming_them(
    client: FlaskClient, path: str, named: str | None
) -> None:
    response = client.post(path, json=ROW)
    assert response.status_code in (400, 404)
    assert response.content_type == "application/problem+json"
    if named is not None:
        assert response.status_code == 400
        assert named in response.get_json()["detail"]


def test_dot_dot_segments_never_reach_a_model(client: FlaskClient) -> None:
    for path in ("/models/../predict", "/models/iris/versions/../predict", "/models/./predict"):
        response = client.post(path, json=ROW)
        assert response.status_code in (400, 404), path
        assert response.content_type == "application/problem+json"


def test_good_names_still_work(client: FlaskClient) -> None:
    assert client.post("/models/iris/versions/1/predict", json=ROW).status_code == 200
    assert client.post("/models/iris/versions/latest/predict", json=ROW).status_code == 200
    assert client.get("/models/iris").status_code == 200


@pytest.mark.parametrize("name", ["../x", "/etc", "a/b", "a\x00b", "..", "", "Upper", "9lives", "x" * 64])
def test_store_lookups_refuse_traversal(tmp_path: Path, name: str) -> None:
    store = ModelStore(tmp_path / "store")
    with pytest.raises(ConfigError, match="model name"):
        store.versions(name)
    with pytest.raises(ConfigError, match="model name"):
        store.add_version(name, lambda directory, version: None)
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())


@pytest.mark.parametrize("version", ["../1", "/1", "1\x00", "..", "1/2", ""])
def test_store_versions_refuse_traversal(model_store: Path, version: str) -> None:
    store = ModelStore(model_store)
    with pytest.raises(ConfigError, match="model version"):
        store.resolve("iris", version)
    with pytest.raises(ConfigError, match="model version"):
        store.version_dir("iris", version)


def test_model_json_cannot_point_outside_its_version(model_store: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(model_store / "iris", copy / "iris")
    meta = copy / "iris" / "1" / "model.json"
    meta.write_text(meta.read_text().replace('"artefact": "model.skops"', '"artefact": "../../../etc/passwd"'))
    with pytest.raises(ConfigError, match="must be a file name"):
        ModelStore(copy).read_meta("iris", "1")


def test_register_refuses_a_traversing_name_before_touching_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "plumber.R"
    script.write_text("#* @get /ping\nfunction() 'ok'\n")
    with pytest.raises(ConfigError, match=r"model name '\.\./evil'"):
        register_artefact(tmp_path / "store", "../evil", script, None)
    config = tmp_path / "gateway.toml"
    config.write_text('[store]\npath = "store"\n')
    assert main(["--config", str(config), "register", "/abs/evil", str(script)]) == 2
    assert "model name '/abs/evil' is not valid" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()
    assert not (tmp_path / "evil").exists()
