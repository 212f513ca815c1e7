"""Is a stored artefact the one that was registered? sha256 of a file, or of a script's directory.

A Plumber script reads the files beside it (and sources other scripts), so the whole version
directory is the artefact: its hash covers every file but model.json, which records it.
The R side (gatewayr:::tree_sha256) computes the same digest before a worker runs the script.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gateway.store import sha256_of

META_FILE = "model.json"


def tree_sha256(directory: Path) -> str:
    """sha256 of a `sha256sum`-style manifest (`<hex>  <relative path>\\n`, sorted bytewise) of
    every regular file under directory except the top-level model.json."""
    directory = Path(directory)
    files = sorted(
        (p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()),
        key=lambda rel: rel.encode("utf-8"),
    )
    manifest = "".join(f"{sha256_of(directory / rel)}  {rel}\n" for rel in files if rel != META_FILE)
    return hashlib.sha256(manifest.encode("utf-8")).hexdigest()


def file_problem(path: Path, recorded: str) -> str | None:
    """Why `path` is not the registered artefact (no sha256 recorded, or a different one), or None."""
    if not recorded.strip():
        return (f"model.json records no sha256 for {path.name}, so it cannot be checked; "
                "register the model again (gateway register, or register_model())")
    actual = sha256_of(path)
    if actual != recorded:
        return (f"{path} has sha256 {actual} but model.json records {recorded}: the artefact changed "
                "after it was registered; register a new version instead")
    return None


def tree_problem(directory: Path, recorded: str) -> str | None:
    """As file_problem, for a Plumber script's whole version directory."""
    if not recorded.strip():
        return (f"model.json in {directory} records no tree_sha256 for the script's directory; "
                "register the script again with `gateway register`")
    actual = tree_sha256(directory)
    if actual != recorded:
        return (f"the files of {directory} have tree_sha256 {actual} but model.json records {recorded}: "
                "a file changed after the script was registered; register a new version instead")
    return None


def outside_links(directory: Path) -> list[str]:
    """Symlinks under directory that point outside it (or nowhere): refused at registration."""
    root = Path(directory).resolve()
    found = []
    for path in sorted(Path(directory).rglob("*")):
        if path.is_symlink():
            target = path.resolve()
            if not target.exists() or not target.is_relative_to(root):
                found.append(f"{path} -> {target}")
    return found
