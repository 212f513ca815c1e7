"""Registering a Plumber script: its folder or entrypoint.R as plumb(dir) takes them, and its R
packages checked by R at `gateway register` and `gateway up` (one line naming the Debian package)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main

# arrow (Plumber's feather serializer) is not in Debian: it is missing on every host we run on.
NEEDS_ARROW = "#* @serializer feather\n#* @get /frame\nfunction() data.frame(a = 1)\n"
ARROW_LINE = (
    "gateway: config error: model 'frames' needs the R package 'arrow' (for @serializer feather in plumber.R), "
    "which is not installed; install the Debian package: apt-get install r-cran-arrow"
)


def write_config(directory: Path, models: str = "") -> Path:
    config = directory / "gateway.toml"
    config.write_text(f'[server]\nrun_dir = "{directory / "run"}"\n[store]\npath = "{directory / "store"}"\n{models}',
                      encoding="utf-8")
    return config


def app(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def test_a_script_missing_an_r_package_is_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = app(tmp_path / "frames", {"plumber.R": NEEDS_ARROW})
    config = write_config(tmp_path)
    assert main(["--config", str(config), "register", "frames", str(source / "plumber.R")]) == 2
    assert capsys.readouterr().err.splitlines() == [ARROW_LINE]
    assert not (tmp_path / "store" / "frames").exists()


def test_up_refuses_a_configured_script_missing_an_r_package_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = app(tmp_path / "frames", {"plumber.R": NEEDS_ARROW})
    config = write_config(tmp_path, f'[models.frames]\nbackend = "plumber"\nscript = "{source}"\n')
    assert main(["--config", str(config), "up", "--detach"]) == 2
    assert capsys.readouterr().err.splitlines() == [ARROW_LINE]
    assert not (tmp_path / "run" / "supervisord.pid").exists()


def test_a_folder_registers_its_entrypoint_else_its_plumber_r(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with_entry = app(tmp_path / "a", {"entrypoint.R": "plumber::pr('api.R')\n",
                                      "api.R": "#* @get /x\nfunction() 1\n", "plumber.R": "#* @get /y\nfunction() 2\n"})
    plain = app(tmp_path / "b", {"plumber.R": "#* @get /y\nfunction() 2\n", "data.csv": "a\n1\n"})
    assert main(["--config", str(config), "register", "entry", str(with_entry)]) == 0
    assert main(["--config", str(config), "register", "plain", str(plain)]) == 0
    for name, artefact, files in (("entry", "entrypoint.R", {"entrypoint.R", "api.R", "plumber.R"}),
                                  ("plain", "plumber.R", {"plumber.R", "data.csv"})):
        directory = tmp_path / "store" / name / "1"
        assert json.loads((directory / "model.json").read_text())["artefact"] == artefact
        assert {p.name for p in directory.iterdir()} == files | {"model.json"}


def test_a_folder_with_nothing_plumb_serves_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = app(tmp_path / "empty", {"README.md": "nothing\n"})
    assert main(["--config", str(write_config(tmp_path)), "register", "empty", str(empty)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"gateway: config error: {empty} has neither an entrypoint.R nor a plumber.R (what plumb(dir) serves), "
        "nor an MLmodel file (an MLflow model)"
    )


def test_every_missing_package_and_an_unparsable_script_are_named_in_one_line_per_model(tmp_path: Path) -> None:
    from gateway.errors import ConfigError
    from gateway.script_deps import check_script_packages

    two = app(tmp_path / "two", {"plumber.R": "library(nopkgalpha)\nx <- NoPkgBeta::f()\n"})
    broken = app(tmp_path / "broken", {"plumber.R": "function( {\n"})
    with pytest.raises(ConfigError) as raised:
        check_script_packages({"two": two, "broken": broken})
    assert str(raised.value).splitlines() == [
        "model 'two' needs R packages that are not installed: 'nopkgalpha' (for library(nopkgalpha) in plumber.R), "
        "'NoPkgBeta' (for NoPkgBeta::f in plumber.R); install the Debian packages: "
        "apt-get install r-cran-nopkgalpha r-cran-nopkgbeta",
        "model 'broken': R cannot parse plumber.R:1:11: unexpected '{' 1: function( { ^",
    ]
