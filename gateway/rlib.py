"""The R library every R process of the stack loads gatewayr from, and installing gatewayr into it.

The wheel carries gatewayr's sources (gateway.paths.gatewayr_sources); the first use of R
(`gateway up` with R models, registering an R model, `gateway setup r`) installs them with
`R CMD INSTALL`, once per version of those sources: a stamp file holds their sha256, so a new
wheel with changed R code reinstalls and an unchanged one costs one hash. Where the library is:

1. `GATEWAY_R_LIBRARY`, when set (a container image, a shared host);
2. in a source checkout, its `.rlib` (`make deps` fills it);
3. `$XDG_DATA_HOME/gateway/rlib/<version>` when XDG_DATA_HOME is set;
4. as root, `/var/lib/gateway/rlib/<version>`: root's home is out of reach of the service users a
   root-started stack drops to, and the library is installed 0755 so they can read it;
5. else `~/.local/share/gateway/rlib/<version>` (XDG's default).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from gateway.errors import ConfigError
from gateway.paths import checkout_root, gatewayr_sources

LIBRARY_ENV = "GATEWAY_R_LIBRARY"
ROOT_LIBRARY = Path("/var/lib/gateway/rlib")
STAMP = ".gatewayr.sha256"  # in the library: the sha256 of the sources installed there
_LOCK = ".gatewayr.lock"
# What R CMD INSTALL needs of gatewayr's sources (tests/ stays in the checkout); the wheel ships
# these (pyproject.toml's package-data lists the same).
SHIPPED = ("DESCRIPTION", "NAMESPACE", "LICENSE", "R", "man")
_APT = "apt-get install -y --no-install-recommends"


def gatewayr_version(sources: Path | None = None) -> str:
    """The Version field of gatewayr's DESCRIPTION."""
    description = (sources or gatewayr_sources()) / "DESCRIPTION"
    for line in description.read_text(encoding="utf-8").splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise ConfigError(f"{description} has no Version field")


def sources_digest(sources: Path | None = None) -> str:
    """sha256 over the shipped source files, names and contents: what makes an install current."""
    root = sources or gatewayr_sources()
    digest = hashlib.sha256()
    for entry in SHIPPED:
        path = root / entry
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def library_dir() -> Path:
    """Where gatewayr is (to be) installed for this process, by the rules in the module docstring."""
    return choose_library(os.environ, os.geteuid(), checkout_root(), Path.home(), gatewayr_version())


def choose_library(env: Mapping[str, str], euid: int, checkout: Path | None, home: Path, version: str) -> Path:
    """The rules of the module docstring, as a function of what they depend on."""
    if env.get(LIBRARY_ENV):
        return Path(env[LIBRARY_ENV])
    if checkout is not None:
        return checkout / ".rlib"
    if env.get("XDG_DATA_HOME", "").startswith("/"):  # XDG: a relative value is to be ignored
        return Path(env["XDG_DATA_HOME"]) / "gateway" / "rlib" / version
    if euid == 0:
        return ROOT_LIBRARY / version
    return home / ".local" / "share" / "gateway" / "rlib" / version


def is_current(library: Path, digest: str | None = None) -> bool:
    """gatewayr is installed in `library` from the sources this package carries."""
    try:
        stamp = (library / STAMP).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return (library / "gatewayr" / "DESCRIPTION").is_file() and stamp == (digest or sources_digest())


def ensure_r_library() -> Path:
    """The library, with gatewayr installed from this package's sources unless already current.

    Concurrent callers wait for one install (a lock file in the library). Raises ConfigError
    with R's words when R is missing or R CMD INSTALL fails (a missing R dependency, say).
    """
    library = library_dir()
    digest = sources_digest()
    if is_current(library, digest):
        return library
    try:
        _make_dirs(library)
        with open(library / _LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not is_current(library, digest):
                _install(library, digest)
    except OSError as exc:
        raise ConfigError(f"cannot install the gatewayr R package into {library}: {exc.strerror} ({exc.filename}); "
                          f"run `gateway setup r` as a user who may write there, or set {LIBRARY_ENV} to a "
                          "directory you can write") from None
    return library


def _install(library: Path, digest: str) -> None:
    r = shutil.which("R")
    if r is None:
        raise ConfigError(f"R is not installed (no `R` on PATH), and R models need it; fix: {_APT} r-base-core")
    print(f"installing the gatewayr R package {gatewayr_version()} into {library} (once per gateway version)",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="gatewayr-") as scratch:
        # A copy: R CMD INSTALL may write next to the sources, and site-packages may be read-only.
        source = Path(scratch) / "gatewayr"
        source.mkdir()
        for entry in SHIPPED:
            path = gatewayr_sources() / entry
            if path.is_dir():
                shutil.copytree(path, source / entry)
            elif path.is_file():
                shutil.copyfile(path, source / entry)
        # umask 022: the service users of a root-started stack read the library.
        result = subprocess.run([r, "CMD", "INSTALL", "--no-multiarch", "--no-test-load", f"--library={library}",
                                 str(source)], capture_output=True, text=True, check=False, umask=0o022)
    if result.returncode != 0:
        said = " ".join((result.stderr or result.stdout).split())[-1500:]
        fix = (f"{_APT} r-cran-plumber r-cran-jsonlite" if "are not available" in said or "is not available" in said
               else "see R's message")
        raise ConfigError(f"installing the gatewayr R package into {library} failed: {said}; fix: {fix}")
    stamp = library / f"{STAMP}.tmp"
    stamp.write_text(digest + "\n", encoding="utf-8")
    os.chmod(stamp, 0o644)
    stamp.replace(library / STAMP)


def _make_dirs(path: Path) -> None:
    """mkdir -p, each new directory 0755 whatever the umask (the service users cross them)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        os.chmod(directory, 0o755)
