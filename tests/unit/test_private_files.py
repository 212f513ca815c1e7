"""Secrets and state are private to their owner: 0600 files from creation on, 0700 directories.

Checked under umask 0, so the modes come from the code, not from a lucky environment.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import private_files
from gateway.auth import new_entry, write_keys
from gateway.runtime.render import render_all, render_to
from gateway.store import ModelStore
from tests.unit.test_render_secret import secret_settings

SECRET = "s" * 43


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, str]:
    """Every path under root (root included) whose mode lets group or others in."""
    return {str(p): oct(p.stat().st_mode & 0o777) for p in [root, *root.rglob("*")]
            if not p.is_symlink() and not stat.S_ISSOCK(p.stat().st_mode) and p.stat().st_mode & 0o077}


def test_a_private_file_is_0600_before_it_takes_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    replace = os.replace

    def spy(source: str, target: Path) -> None:
        seen.append(os.stat(source).st_mode & 0o777)  # the temp file, as written, before the rename
        replace(source, target)

    monkeypatch.setattr(private_files.os, "replace", spy)
    target = tmp_path / "nginx.conf"
    target.write_text("old")
    target.chmod(0o644)
    private_files.write_private(target, "new")
    assert seen == [0o600] and target.stat().st_mode & 0o777 == 0o600 and target.read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["nginx.conf"]  # no temp file left


def test_a_private_dir_is_made_or_tightened(tmp_path: Path) -> None:
    made = private_files.private_dir(tmp_path / "a" / "run")
    assert made.stat().st_mode & 0o777 == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    assert private_files.private_dir(loose).stat().st_mode & 0o777 == 0o700
    log = private_files.open_private(loose / "start.log")
    os.close(log)
    assert (loose / "start.log").stat().st_mode & 0o777 == 0o600


def test_keys_file_and_its_new_directory_are_private(tmp_path: Path) -> None:
    _, entry = new_entry("svc", "predict")
    path = tmp_path / "secrets" / "keys.json"
    write_keys(path, [entry])
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    write_keys(shared / "keys.json", [entry])
    assert shared.stat().st_mode & 0o777 == 0o755  # an existing directory is the user's business


def test_rendered_configs_and_the_run_dir_are_private(tmp_path: Path) -> None:
    settings, plan = secret_settings(tmp_path)
    files = render_all(settings, plan)
    plan.save()
    assert SECRET in files["nginx"].read_text()
    assert modes(Path(plan.run_dir)) == {}
    out = render_to(settings, plan, tmp_path / "out")
    assert SECRET in out["nginx"].read_text()
    assert modes(tmp_path / "out") == {}


def test_a_new_store_version_is_private(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "data.csv").write_text("x\n1\n")
    (source / "data.csv").chmod(0o644)
    store = ModelStore(tmp_path / "store")

    def write(directory: Path, version: str) -> None:
        (directory / "data.csv").write_bytes((source / "data.csv").read_bytes())
        (directory / "data.csv").chmod(0o644)
        (directory / "sub").mkdir(mode=0o755)

    store.add_version("echo", write)
    assert modes(tmp_path / "store") == {}
