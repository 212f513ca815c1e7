"""Where gatewayr's R library is, and when it counts as current (gateway/rlib.py).

The real install (R CMD INSTALL from an installed wheel into the XDG data dir) runs in
tests/integration/test_wheel_install.py.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from gateway import paths, rlib
from gateway.errors import ConfigError

HOME = Path("/home/ann")
CHECKOUT = Path("/src/gateway")


@pytest.mark.parametrize(("env", "euid", "checkout", "expected"), [
    ({"GATEWAY_R_LIBRARY": "/opt/rlib", "XDG_DATA_HOME": "/x"}, 0, CHECKOUT, "/opt/rlib"),
    ({"XDG_DATA_HOME": "/x"}, 1000, CHECKOUT, "/src/gateway/.rlib"),  # a checkout: make deps's .rlib
    ({"XDG_DATA_HOME": "/x"}, 1000, None, "/x/gateway/rlib/1.2.3"),
    ({"XDG_DATA_HOME": "/x"}, 0, None, "/x/gateway/rlib/1.2.3"),  # set on purpose: up checks who reads it
    ({}, 0, None, "/var/lib/gateway/rlib/1.2.3"),  # root's home is out of the service users' reach
    ({"XDG_DATA_HOME": "relative"}, 1000, None, "/home/ann/.local/share/gateway/rlib/1.2.3"),  # XDG: ignored
    ({"GATEWAY_R_LIBRARY": ""}, 1000, None, "/home/ann/.local/share/gateway/rlib/1.2.3"),
])
def test_the_library_by_rule(env: dict[str, str], euid: int, checkout: Path | None, expected: str) -> None:
    assert rlib.choose_library(env, euid, checkout, HOME, "1.2.3") == Path(expected)


def test_this_checkout_uses_its_rlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_R_LIBRARY", raising=False)
    assert rlib.library_dir() == paths.REPO_ROOT / ".rlib"
    assert paths.gatewayr_sources().resolve() == (paths.REPO_ROOT / "r_services").resolve()  # gateway/_r's symlink


def copy_sources(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    shutil.copytree(paths.gatewayr_sources(), source)
    return source


def test_the_digest_follows_the_shipped_sources_only(tmp_path: Path) -> None:
    source = copy_sources(tmp_path)
    digest = rlib.sources_digest(source)
    assert digest == rlib.sources_digest(paths.gatewayr_sources())
    (source / "tests" / "testthat" / "test-new.R").write_text("# not shipped\n")
    assert rlib.sources_digest(source) == digest
    with (source / "R" / "utils.R").open("a") as out:
        out.write("\n# changed\n")
    assert rlib.sources_digest(source) != digest
    assert rlib.gatewayr_version(source) == rlib.gatewayr_version()


def test_current_means_installed_from_these_sources(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    (library / "gatewayr").mkdir(parents=True)
    assert not rlib.is_current(library, "abc")  # no stamp: installed by someone else, or half
    (library / rlib.STAMP).write_text("abc\n")
    assert not rlib.is_current(library, "abc")  # a stamp but no package
    (library / "gatewayr" / "DESCRIPTION").write_text("Package: gatewayr\n")
    assert rlib.is_current(library, "abc")
    assert not rlib.is_current(library, "def")  # other sources: reinstall


def test_a_current_library_needs_no_r(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "lib"
    (library / "gatewayr").mkdir(parents=True)
    (library / "gatewayr" / "DESCRIPTION").write_text("Package: gatewayr\n")
    (library / rlib.STAMP).write_text(rlib.sources_digest())
    monkeypatch.setenv("GATEWAY_R_LIBRARY", str(library))
    monkeypatch.setenv("PATH", str(tmp_path))  # no R here
    assert rlib.ensure_r_library() == library


def test_without_r_the_install_says_which_package_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_R_LIBRARY", str(tmp_path / "lib"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError) as raised:
        rlib.ensure_r_library()
    assert "R is not installed" in str(raised.value)
    assert str(raised.value).endswith("fix: apt-get install -y --no-install-recommends r-base-core")


def test_a_failed_install_says_what_r_said_and_leaves_no_stamp(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fake_r = tmp_path / "bin" / "R"  # R CMD INSTALL as it refuses on a host without plumber
    fake_r.parent.mkdir()
    fake_r.write_text("#!/bin/sh\necho \"ERROR: dependency 'plumber' is not available for package 'gatewayr'\" >&2\n"
                      "exit 1\n")
    fake_r.chmod(0o755)
    monkeypatch.setenv("GATEWAY_R_LIBRARY", str(tmp_path / "lib"))
    monkeypatch.setenv("PATH", str(fake_r.parent))
    with pytest.raises(ConfigError) as raised:
        rlib.ensure_r_library()
    assert f"into {tmp_path / 'lib'} failed: ERROR: dependency 'plumber' is not available" in str(raised.value)
    assert str(raised.value).endswith("fix: apt-get install -y --no-install-recommends r-cran-plumber r-cran-jsonlite")
    assert not (tmp_path / "lib" / rlib.STAMP).exists()


def test_a_library_it_cannot_write_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "taken").write_text("a file where the library should be\n")
    monkeypatch.setenv("GATEWAY_R_LIBRARY", str(tmp_path / "taken" / "lib"))
    with pytest.raises(ConfigError, match=r"cannot install the gatewayr R package into .*GATEWAY_R_LIBRARY"):
        rlib.ensure_r_library()


def test_new_library_directories_are_readable_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        rlib._make_dirs(tmp_path / "var" / "lib" / "gateway")
    finally:
        os.umask(old)
    for directory in (tmp_path / "var", tmp_path / "var" / "lib", tmp_path / "var" / "lib" / "gateway"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755
