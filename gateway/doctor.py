"""`gateway doctor`: what this host has against what the config needs, one line per problem.

Each check is a small function of the config returning its problems, each with the command that
fixes it; CHECKS lists them in the order they print. A new check is one function and one line.
What the stack itself checks at `up` (service users, who can reach what, script packages) is
asked of the code that checks it there, not written twice.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.backends import KINDS
from gateway.errors import ConfigError
from gateway.rlib import is_current, library_dir
from gateway.rscript import run_rscript
from gateway.runtime import privileges, procs
from gateway.runtime.plan import make_plan
from gateway.runtime.render import NGINX
from gateway.runtime.stack import SUPERVISORD_PID
from gateway.script_deps import check_script_packages
from gateway.settings import Settings
from gateway.store import ModelStore

APT = "apt-get install -y --no-install-recommends"
LOW_DISK_BYTES = 1 << 30  # under this much free space under the run dir or the store: a warning


@dataclass(frozen=True)
class Problem:
    """One thing this host lacks, and the command (or step) that fixes it."""

    what: str
    fix: str
    level: Literal["error", "warning"] = "error"

    def line(self) -> str:
        return f"{self.level}: {self.what}; fix: {self.fix}"


Check = Callable[[Settings], list[Problem]]


def _kinds(settings: Settings) -> set[str]:
    return {model.backend for model in settings.models.values()}


def _r_models(settings: Settings) -> list[str]:
    return [m.name for m in settings.models.values() if KINDS.get(m.backend).language == "r"]


def check_nginx(settings: Settings) -> list[Problem]:
    """The stack runs NGINX from Debian's path (gateway.runtime.render.NGINX)."""
    if os.access(NGINX, os.X_OK):
        return []
    return [Problem(f"NGINX is not installed ({NGINX} missing)", f"{APT} nginx-light")]


def check_r(settings: Settings) -> list[Problem]:
    """Rscript on PATH when any configured model is an R one (registration, demo, script checks)."""
    models = _r_models(settings)
    if not models or shutil.which("Rscript"):
        return []
    return [Problem(f"R (Rscript) is not on PATH and models {', '.join(models)} are R models",
                    f"{APT} r-base-core")]


def check_gatewayr(settings: Settings) -> list[Problem]:
    """The gatewayr R package in the gateway's R library (gateway.rlib): every R worker loads it.

    `gateway up` would install it; doctor only looks, and says so.
    """
    library = library_dir()
    if not _r_models(settings) or is_current(library):
        return []
    return [Problem(f"the gatewayr R package is not installed in {library}, or not from this gateway's sources",
                    "gateway setup r (or let `gateway up` install it)", "warning")]


def check_model_packages(settings: Settings) -> list[Problem]:
    """The R packages each configured R model's stored version recorded (model.json's framework)."""
    if not _r_models(settings) or not shutil.which("Rscript"):
        return []  # check_r names the missing R
    store = ModelStore(settings.store_path)
    needed: dict[str, list[str]] = {}
    for name in _r_models(settings):
        try:  # model.json as written: an artefact problem (check_store) does not hide a package
            meta_file = store.version_dir(name, store.resolve(name, settings.models[name].version)) / "model.json"
            framework = json.loads(meta_file.read_text(encoding="utf-8")).get("framework") or {}
        except (ConfigError, OSError, ValueError):
            continue  # check_store names it
        for package in (framework.get("packages") or {}):
            needed.setdefault(package, []).append(name)
    if not needed:
        return []
    script = "for (p in commandArgs(TRUE)) if (!nzchar(system.file(package = p))) cat(p, '\\n')"
    try:
        missing = run_rscript(["-e", script, *sorted(needed)], install=False).split()
    except ConfigError as exc:
        return [Problem(f"R could not list its packages: {exc}", f"{APT} r-base-core")]
    return [Problem(f"R package '{package}' is not installed (needed by {', '.join(needed[package])})",
                    f"{APT} r-cran-{package.lower()}") for package in missing]


def check_script_deps(settings: Settings) -> list[Problem]:
    """The packages each Plumber script this host serves loads (gateway.script_deps, as `up` does)."""
    if not shutil.which("Rscript") or not is_current(library_dir()):
        return []  # check_r and check_gatewayr name these
    try:
        plan = make_plan(settings)
    except ConfigError:
        return []  # check_store names it
    scripts = {p.model: Path(p.target) for p in plan.pools.values() if p.kind == "script" and p.workers}
    try:
        check_script_packages(scripts)
    except ConfigError as exc:
        return [Problem(line.split("; install")[0], _apt_fix(line)) for line in str(exc).splitlines()]
    return []


def _apt_fix(line: str) -> str:
    debian = [word for word in line.split() if word.startswith("r-cran-")]
    return f"{APT} {' '.join(debian)}" if debian else "see the model's script"


def check_store(settings: Settings) -> list[Problem]:
    """Each configured model (not a script path) has the version it asks for in the store, readable."""
    store = ModelStore(settings.store_path)
    problems = []
    for model in settings.models.values():
        if model.script is not None:
            continue
        try:
            store.read_meta(model.name, store.resolve(model.name, model.version))
        except ConfigError as exc:
            what, _, fix = str(exc).partition("; ")
            problems.append(Problem(what, fix or f"gateway register {model.name} FILE"))
    return problems


def check_python_modules(settings: Settings) -> list[Problem]:
    """rpy2 for rpy2 models, onnxruntime for onnx ones: imported in Gunicorn's workers."""
    wanted = {"rpy2": "rpy2", "onnx": "onnxruntime"}
    pip = Path(sys.executable).parent / "pip"
    return [Problem(f"Python module {module} is not importable and backend {kind} is configured",
                    f"{pip} install {module}")
            for kind, module in wanted.items()
            if kind in _kinds(settings) and importlib.util.find_spec(module) is None]


def check_port(settings: Settings) -> list[Problem]:
    """The public port is free (a running stack of this config holds it: then it is not a problem)."""
    server = settings.server
    if _stack_running(settings.run_dir):
        return []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((server.host, server.port))
        except OSError as exc:
            return [Problem(f"port {server.host}:{server.port} is taken ({exc.strerror})",
                            "stop what listens there (`ss -ltnp`) or set server.port")]
    return []


def _stack_running(run_dir: Path) -> bool:
    try:
        pid = int((run_dir / SUPERVISORD_PID).read_text().strip())
    except (OSError, ValueError):
        return False
    return procs.is_running(pid, "supervisord")


def check_users(settings: Settings) -> list[Problem]:
    """As root, the service users exist and can reach the run dir and the store.

    `up` opens the run dir and the store themselves to the service group; what it cannot fix is a
    directory above them that the users cannot cross, so those are checked (as `up` checks them).
    """
    try:
        owners = privileges.accounts(settings)
        if owners is not None:
            above = [p for p in (_existing(settings.run_dir.parent), _existing(settings.store_path.parent)) if p]
            for user in (owners.user, owners.r_user):
                privileges.check_reachable(user, above)
    except privileges.PrivilegeError as exc:
        what, _, fix = str(exc).partition("; ")
        return [Problem(what, fix or "see docs/security.md")]
    return []


def _existing(path: Path) -> Path | None:
    """The path, or its nearest existing parent (the run dir is made at the first `up`)."""
    return next((p for p in (path, *path.parents) if p.exists()), None)


def check_run_dir_mode(settings: Settings) -> list[Problem]:
    """The run dir holds rendered configs and logs: no access for other users."""
    run_dir = settings.run_dir
    if run_dir.is_dir() and stat.S_IMODE(run_dir.stat().st_mode) & 0o007:
        return [Problem(f"run dir {run_dir} is open to other users (mode {stat.S_IMODE(run_dir.stat().st_mode):o})",
                        f"chmod o-rwx {run_dir}")]
    return []


def check_disk(settings: Settings) -> list[Problem]:
    """Free space where logs and models are written."""
    problems = []
    for label, path in (("run dir", settings.run_dir), ("store", settings.store_path)):
        existing = _existing(path)
        if existing is None:
            continue
        free = shutil.disk_usage(existing).free
        if free < LOW_DISK_BYTES:
            problems.append(Problem(f"{free // (1 << 20)} MiB free under the {label} {path}",
                                    "free disk space there or move it (server.run_dir / store.path)", "warning"))
    return problems


CHECKS: tuple[Check, ...] = (
    check_nginx, check_r, check_gatewayr, check_store, check_model_packages, check_script_deps,
    check_python_modules, check_port, check_users, check_run_dir_mode, check_disk,
)


def run(settings: Settings) -> list[Problem]:
    """Every check's problems, in order."""
    return [problem for check in CHECKS for problem in check(settings)]


def report(problems: list[Problem]) -> str:
    """One line per problem, then a summary."""
    errors = sum(p.level == "error" for p in problems)
    warnings = len(problems) - errors
    summary = ("doctor: all good" if not problems
               else f"doctor: {errors} problem{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
    return "\n".join([*(p.line() for p in problems), summary])
