"""The model store: `<store>/<name>/<version>/` with an artefact and its `model.json`.

Versions are positive integers, immutable once written; "latest" is the highest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from gateway.errors import ConfigError
from gateway.meta import ModelMeta
from gateway.names import name_problem, version_problem
from gateway.private_files import private_dir


def _checked(name: str, version: str | None = None) -> None:
    """ConfigError for a name or version that is not a plain token (no traversal, no NUL)."""
    problem = name_problem(name) or (version_problem(version) if version is not None else None)
    if problem:
        raise ConfigError(problem)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def versions(self, name: str) -> list[str]:
        """Stored versions of a model, oldest first."""
        _checked(name)
        model_dir = self.root / name
        if not model_dir.is_dir():
            return []
        found = [p.name for p in model_dir.iterdir() if p.name.isdigit() and (p / "model.json").is_file()]
        return sorted(found, key=int)

    def resolve(self, name: str, version: str = "latest") -> str:
        """The concrete version a config asks for; ConfigError if it is not stored."""
        _checked(name, version)
        versions = self.versions(name)
        if not versions:
            raise ConfigError(
                f"model {name!r} has no versions in the store {self.root}; register one with "
                f"`gateway register {name} PATH` (or save_model() in R)"
            )
        if version == "latest":
            return versions[-1]
        if version not in versions:
            raise ConfigError(
                f"model {name!r} has no version {version!r} in {self.root}; stored: {', '.join(versions)}"
            )
        return version

    def version_dir(self, name: str, version: str) -> Path:
        _checked(name, version)
        return self.root / name / version

    def read_meta(self, name: str, version: str) -> ModelMeta:
        path = self.version_dir(name, version) / "model.json"
        try:
            meta = ModelMeta.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path}: unreadable model metadata ({exc})") from None
        if Path(meta.artefact).name != meta.artefact or meta.artefact in ("", ".", ".."):
            raise ConfigError(f"{path}: artefact {meta.artefact!r} must be a file name inside the version directory")
        artefact = self.version_dir(name, version) / meta.artefact
        if not artefact.exists():
            raise ConfigError(f"model {name!r} version {version}: artefact {artefact} is missing")
        return meta

    def add_version(self, name: str, write: Callable[[Path, str], None]) -> str:
        """Create the next version atomically: `write(tmp_dir, version)` fills it, then it appears.

        The files are fsynced before the rename, so after a crash the version is whole or absent;
        the rename makes a half-written version invisible to readers; a concurrent writer that
        raced us to the same number fails the rename and retries with the next one. A full disk
        or an unwritable store is a ConfigError naming the path, and leaves nothing behind.
        """
        _checked(name)
        model_dir = self.root / name
        try:
            private_dir(self.root)  # the store is private to its owner, like the run directory
            private_dir(model_dir)
        except OSError as exc:
            raise ConfigError(f"cannot create {model_dir} ({exc.strerror}); is the store writable?") from None
        for _ in range(100):
            existing = [int(p.name) for p in model_dir.iterdir() if p.name.isdigit()]
            version = str(max(existing, default=0) + 1)
            try:
                tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=model_dir))
            except OSError as exc:
                raise ConfigError(f"cannot write into {model_dir} ({exc.strerror}); is the store writable?") from None
            try:
                try:
                    write(tmp, version)
                    _make_private(tmp)
                    _fsync_tree(tmp)
                except OSError as exc:
                    raise ConfigError(
                        f"writing version {version} of {name!r} failed ({exc.strerror or exc}); nothing was "
                        f"stored in {model_dir}. Is the disk full or the store read-only?"
                    ) from None
                try:
                    os.rename(tmp, model_dir / version)
                except OSError as exc:
                    if (model_dir / version).exists():
                        continue
                    raise ConfigError(f"cannot publish {model_dir / version} ({exc.strerror})") from None
                _fsync_dir(model_dir)
                return version
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"could not allocate a new version for {name!r}")


def _make_private(directory: Path) -> None:
    """No group or other bits on anything in a new version (files copied in keep their mode)."""
    for path in directory.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, path.stat().st_mode & 0o700)


def _fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*"), reverse=True):  # files before the dirs holding them
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        elif path.is_dir():
            _fsync_dir(path)
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
