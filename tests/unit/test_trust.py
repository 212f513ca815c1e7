"""Registering trusts what the user registered, and nothing else (skops types, sha256, targets)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor, IsolationForest
from sklearn.linear_model import LogisticRegression

from gateway.backends.python import PythonBackend
from gateway.cli import main
from gateway.errors import ConfigError
from gateway.register import register_artefact, register_model
from gateway.store import ModelStore

TREE = "sklearn.tree._tree.Tree"


def frame_and_target(n: int = 60) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    return frame, (frame["a"] + frame["b"] > 0).astype(int)


def loaded(store: Path, name: str, version: str, *, trusted: bool = False) -> PythonBackend:
    models = ModelStore(store)
    backend = PythonBackend(models.read_meta(name, version), models.version_dir(name, version), trusted=trusted)
    backend.load()
    return backend


def edit_meta(path: Path, **changes: Any) -> None:
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta.update(changes)
    path.write_text(json.dumps(meta), encoding="utf-8")


def test_register_model_records_exactly_the_untrusted_types_and_loads_without_trusted(tmp_path: Path) -> None:
    frame, target = frame_and_target()
    model = GradientBoostingClassifier(n_estimators=5).fit(frame, target)
    version = register_model(model, "gb", frame, store=tmp_path)
    meta = json.loads((tmp_path / "gb" / version / "model.json").read_text())
    assert meta["trusted_types"] == [TREE]
    backend = loaded(tmp_path, "gb", version)  # no `trusted = true`
    assert backend.model.predict(frame).tolist() == model.predict(frame).tolist()


def test_up_checks_a_recorded_skops_file_by_sha256_alone_and_scans_an_unrecorded_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame, target = frame_and_target()
    version = register_model(GradientBoostingClassifier(n_estimators=5).fit(frame, target), "gb", frame, store=tmp_path)
    meta_path = tmp_path / "gb" / version / "model.json"
    assert json.loads(meta_path.read_text())["skops_types_recorded"] is True
    scans: list[Path] = []
    real_scan = sio.get_untrusted_types

    def counted(*, file: Path) -> list[str]:
        scans.append(Path(file))
        return list(real_scan(file=file))

    monkeypatch.setattr(sio, "get_untrusted_types", counted)
    models = ModelStore(tmp_path)
    PythonBackend(models.read_meta("gb", version), models.version_dir("gb", version), trusted=False).check()
    assert scans == []  # the sha256 says it is the file whose types registration recorded
    edit_meta(meta_path, skops_types_recorded=False, trusted_types=[])  # a model.json from before
    with pytest.raises(ConfigError, match=f"skops types not trusted: {TREE}"):
        PythonBackend(models.read_meta("gb", version), models.version_dir("gb", version), trusted=False).check()
    assert len(scans) == 1
    edit_meta(meta_path, skops_types_recorded=True)  # recorded, but the list was emptied: the load refuses
    with pytest.raises(ConfigError, match=f"skops types not trusted: {TREE}"):
        loaded(tmp_path, "gb", version)


def test_a_model_with_no_untrusted_types_records_none(tmp_path: Path) -> None:
    frame, target = frame_and_target()
    version = register_model(LogisticRegression().fit(frame, target), "lr", frame, store=tmp_path)
    assert "trusted_types" not in json.loads((tmp_path / "lr" / version / "model.json").read_text())


def test_recorded_types_are_trusted_only_while_the_sha256_matches(tmp_path: Path) -> None:
    frame, _ = frame_and_target()
    version = register_model(IsolationForest(n_estimators=5, random_state=0).fit(frame), "iso", frame, store=tmp_path)
    artefact = tmp_path / "iso" / version / "model.skops"
    # Another estimator's file swapped in: its types are not the recorded ones' file.
    sio.dump(HistGradientBoostingRegressor(max_iter=3).fit(frame, frame["a"]), artefact)
    with pytest.raises(ConfigError, match="sha256") as info:
        loaded(tmp_path, "iso", version)
    assert "model 'iso' version 1" in str(info.value)


def test_a_type_not_recorded_is_refused_with_the_docs_section(tmp_path: Path) -> None:
    frame, target = frame_and_target()
    version = register_model(GradientBoostingClassifier(n_estimators=5).fit(frame, target), "gb", frame, store=tmp_path)
    edit_meta(tmp_path / "gb" / version / "model.json", trusted_types=[])
    with pytest.raises(ConfigError) as info:
        loaded(tmp_path, "gb", version)
    assert str(info.value) == (f"model 'gb' version 1: skops types not trusted: {TREE}; "
                               'see docs/security.md "Trusting a model"')
    assert loaded(tmp_path, "gb", version, trusted=True).model is not None  # the config's override


@pytest.mark.parametrize("sha", ["", None])
def test_a_python_model_with_a_blank_or_missing_sha256_is_refused(tmp_path: Path, sha: str | None) -> None:
    frame, target = frame_and_target()
    version = register_model(LogisticRegression().fit(frame, target), "lr", frame, store=tmp_path)
    meta_path = tmp_path / "lr" / version / "model.json"
    meta = json.loads(meta_path.read_text())
    if sha is None:
        del meta["sha256"]
    else:
        meta["sha256"] = sha
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="records no sha256"):
        loaded(tmp_path, "lr", version, trusted=True)


def test_a_corrupt_skops_file_with_a_matching_sha256_is_a_config_error(tmp_path: Path) -> None:
    frame, target = frame_and_target()
    version = register_model(LogisticRegression().fit(frame, target), "lr", frame, store=tmp_path)
    artefact = tmp_path / "lr" / version / "model.skops"
    artefact.write_bytes(b"not a zip file")
    from gateway.store import sha256_of

    edit_meta(tmp_path / "lr" / version / "model.json", sha256=sha256_of(artefact))
    with pytest.raises(ConfigError, match="not a readable skops file"):
        loaded(tmp_path, "lr", version)


# ---------------------------------------------------------------- the target column


def test_the_target_column_in_a_sample_is_refused_and_target_drops_it(tmp_path: Path) -> None:
    frame, target = frame_and_target()
    model = LogisticRegression().fit(frame, target)
    with_target = frame.assign(y=target)
    with pytest.raises(ConfigError, match=r"not fitted on: y; .*target="):
        register_model(model, "lr", with_target, store=tmp_path)
    version = register_model(model, "lr", with_target, store=tmp_path, target="y")
    meta = ModelStore(tmp_path).read_meta("lr", version)
    assert [spec.name for spec in meta.inputs] == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="target column 'z' is not in the sample"):
        register_model(model, "lr", with_target, store=tmp_path, target="z")


def test_a_target_left_in_the_sample_of_a_model_fitted_on_arrays_is_refused(tmp_path: Path) -> None:
    frame, target = frame_and_target()
    model = LogisticRegression().fit(frame.to_numpy(), target)
    with pytest.raises(ConfigError, match="4 columns but the estimator was fitted on 3 features"):
        register_model(model, "lr", frame.assign(y=target), store=tmp_path)


# ---------------------------------------------------------------- `gateway register file.skops`


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text('[store]\npath = "store"\n[server]\nrun_dir = "run"\n', encoding="utf-8")
    return config


def test_cli_lists_the_untrusted_types_and_refuses_without_trust(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame, target = frame_and_target()
    sio.dump(GradientBoostingClassifier(n_estimators=5).fit(frame, target), tmp_path / "gb.skops")
    frame.assign(y=target).to_csv(tmp_path / "sample.csv", index=False)
    argv = ["--config", str(write_config(tmp_path)), "register", "gb", str(tmp_path / "gb.skops"),
            "--sample", str(tmp_path / "sample.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("gateway: config error: gb.skops holds 1 type(s) skops does not trust by default")
    assert "--trust" in err[0]
    assert err[1:] == [f"  {TREE}"]  # one line per type
    assert not (tmp_path / "store" / "gb").exists()
    assert main([*argv, "--trust"]) == 2  # the target column is still in the sample
    assert "not fitted on: y" in capsys.readouterr().err
    assert main([*argv, "--trust", "--target", "y"]) == 0
    meta = ModelStore(tmp_path / "store").read_meta("gb", "1")
    assert meta.trusted_types == (TREE,)
    assert loaded(tmp_path / "store", "gb", "1").model is not None


def test_register_artefact_does_not_load_the_file_before_trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame, target = frame_and_target()
    sio.dump(GradientBoostingClassifier(n_estimators=5).fit(frame, target), tmp_path / "gb.skops")
    frame.to_csv(tmp_path / "sample.csv", index=False)

    def no_load(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the file was loaded before the user trusted its types")

    monkeypatch.setattr(sio, "load", no_load)
    with pytest.raises(ConfigError, match=TREE):
        register_artefact(tmp_path / "store", "gb", tmp_path / "gb.skops", tmp_path / "sample.csv")


# ---------------------------------------------------------------- Plumber scripts


def script_dir(tmp_path: Path) -> Path:
    source = tmp_path / "cars"
    source.mkdir()
    (source / "plumber.R").write_text("#* @get /hi\nfunction() 'hi'\n", encoding="utf-8")
    (source / "coefficients.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    return source


def test_a_script_directory_is_hashed_at_registration(tmp_path: Path) -> None:
    from gateway.integrity import tree_problem, tree_sha256

    source = script_dir(tmp_path)
    version = register_artefact(tmp_path / "store", "cars", source / "plumber.R", None)
    directory = tmp_path / "store" / "cars" / version
    meta = ModelStore(tmp_path / "store").read_meta("cars", version)
    assert meta.tree_sha256 == tree_sha256(directory) == tree_sha256(source)
    assert tree_problem(directory, meta.tree_sha256) is None
    (directory / "coefficients.csv").write_text("a,b\n1,3\n", encoding="utf-8")  # not the script itself
    assert "a file changed after the script was registered" in str(tree_problem(directory, meta.tree_sha256))


def test_register_refuses_symlinks_that_point_outside_the_scripts_directory(tmp_path: Path) -> None:
    source = script_dir(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("key", encoding="utf-8")
    (source / "data.txt").symlink_to(secret)
    with pytest.raises(ConfigError, match="symlinks that point outside it") as info:
        register_artefact(tmp_path / "store", "cars", source / "plumber.R", None)
    assert str(secret) in str(info.value)
    assert not (tmp_path / "store" / "cars").exists()
    (source / "data.txt").unlink()
    (source / "inside.csv").symlink_to(source / "coefficients.csv")  # inside: fine
    assert register_artefact(tmp_path / "store", "cars", source / "plumber.R", None) == "1"


def test_copied_store_keeps_checks(tmp_path: Path) -> None:
    """A version copied elsewhere (backups, another host) still checks: no absolute paths hashed."""
    from gateway.integrity import tree_problem

    source = script_dir(tmp_path)
    register_artefact(tmp_path / "store", "cars", source / "plumber.R", None)
    shutil.copytree(tmp_path / "store", tmp_path / "copy")
    meta = ModelStore(tmp_path / "copy").read_meta("cars", "1")
    assert tree_problem(tmp_path / "copy" / "cars" / "1", meta.tree_sha256) is None
