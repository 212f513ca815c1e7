"""Who runs what, and which files each user of a stack may touch.

Started as root, the stack drops privileges: NGINX's workers and Gunicorn run as the service
user (`server.user`), R workers, which run model and script code, as `server.r_user`. The R
user's primary group is the service user's group, so it reads what is group-readable (the run
dir to reach its socket directory, the model store) but none of the service user's private
files (0600: the keys file, the cluster secret, rendered configs). supervisord and NGINX's
master stay root. Started as anyone else, everything runs as that user and nothing is dropped.

Sockets (gateway.runtime.plan.socket_dir): `gw/` (0700, service user) holds the internal NGINX,
which only Gunicorn calls; `r/` (0750, R user, service group) the R workers, which only NGINX's
workers and Gunicorn's health probes call. No other local user can open either.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gateway.backends import KINDS
from gateway.errors import ConfigError
from gateway.metrics import METRICS_DIR, metrics_dir
from gateway.paths import package_dir, r_entrypoint
from gateway.registry import PINNED_FILE
from gateway.rlib import library_dir
from gateway.runtime.plan import GATEWAY_SOCKETS, PLAN_FILE, R_SOCKETS, Plan, socket_dir
from gateway.settings import Settings

# Run-dir entries the service user writes (Gunicorn's logs, NGINX workers' temp files, metrics).
_SERVICE_DIRS = ("logs", "tmp", METRICS_DIR, "workers-ready", "jobs")  # render.WORKERS_READY_DIR, jobs.JOBS_DIR
# Run-dir files Gunicorn reads (the rest, nginx.conf and supervisord.conf, only root reads).
_SERVICE_FILES = ("settings.toml", PLAN_FILE, "gunicorn.conf.py", PINNED_FILE)
CREATE_USERS = ("useradd --system --no-create-home --shell /usr/sbin/nologin {user}; "
                "useradd --system --no-create-home --shell /usr/sbin/nologin --gid {user} {r_user}")


class PrivilegeError(ConfigError):
    """The service users are missing or cannot reach what they need; the message says how to fix it."""


@dataclass(frozen=True)
class Accounts:
    """The users a root-started stack drops to."""

    user: str
    group: str  # the service user's group: also the R user's primary group
    uid: int
    gid: int
    r_user: str
    r_uid: int


def accounts(settings: Settings) -> Accounts | None:
    """The accounts to drop to, or None when not running as root (no drop: nothing to switch to).

    Raises PrivilegeError when a user is missing or the R user is not in the service group.
    """
    server = settings.server
    if os.geteuid() != 0 or not server.user:
        return None
    hint = "create them with `make deps` or: " + CREATE_USERS.format(user=server.user, r_user=server.r_user)
    found = {}
    for key, name in (("user", server.user), ("r_user", server.r_user)):
        try:
            found[key] = pwd.getpwnam(name)
        except KeyError:
            raise PrivilegeError(f"server.{key}: no system user {name!r}; {hint}") from None
    service, r_account = found["user"], found["r_user"]
    if service.pw_uid == 0 or r_account.pw_uid == 0 or service.pw_uid == r_account.pw_uid:
        raise PrivilegeError(f"server.user ({server.user}) and server.r_user ({server.r_user}) must be two "
                             "different unprivileged users: R workers must not read the service user's secrets")
    if r_account.pw_gid != service.pw_gid:
        group = grp.getgrgid(service.pw_gid).gr_name
        raise PrivilegeError(f"server.r_user {server.r_user}: its primary group must be {group} (the group "
                             f"of {server.user}), so that NGINX can reach its sockets; `usermod -g {group} "
                             f"{server.r_user}`")
    return Accounts(server.user, grp.getgrgid(service.pw_gid).gr_name, service.pw_uid, service.pw_gid,
                    server.r_user, r_account.pw_uid)


def prepare_sockets(plan: Plan, socket_dir: Path, owners: Accounts | None) -> None:
    """Fresh socket directories (stale sockets of a killed stack would make binding fail).

    Refuses a directory that someone else created first (the /tmp fallback has a known name).
    """
    inside = Path(plan.run_dir).resolve() in socket_dir.parents
    if socket_dir.is_symlink() or (not inside and socket_dir.exists() and socket_dir.stat().st_uid != os.geteuid()):
        raise PrivilegeError(f"socket directory {socket_dir} exists and is not ours; remove it")
    shutil.rmtree(socket_dir, ignore_errors=True)
    socket_dir.mkdir(mode=0o700, parents=True)
    (socket_dir / GATEWAY_SOCKETS).mkdir(mode=0o700)
    (socket_dir / R_SOCKETS).mkdir(mode=0o700)
    if owners is not None:
        _own(socket_dir, 0, owners.gid, 0o750)
        _own(socket_dir / GATEWAY_SOCKETS, owners.uid, owners.gid, 0o700)
        _own(socket_dir / R_SOCKETS, owners.r_uid, owners.gid, 0o750)


def remove_sockets(run_dir: Path) -> None:
    """After `down`: the /tmp socket directory of a deep run_dir goes too (run_dir/sock stays)."""
    sockets = socket_dir(run_dir)
    if Path(run_dir).resolve() not in sockets.parents and sockets.exists() and sockets.stat().st_uid == os.geteuid():
        shutil.rmtree(sockets, ignore_errors=True)


def grant(settings: Settings, plan: Plan, owners: Accounts | None) -> None:
    """Hand the run dir's files to the users that need them, after every render (up, reload).

    Raises PrivilegeError naming a path the service or R user cannot read.
    """
    if owners is None:
        return
    run_dir = Path(plan.run_dir)
    _own(run_dir, 0, owners.gid, 0o750)  # the R user crosses it to reach its socket directory
    for name in _SERVICE_DIRS:
        if (run_dir / name).is_dir():
            _own(run_dir / name, owners.uid, owners.gid, 0o700)
    if metrics_dir(run_dir).is_dir():  # Gunicorn's per-process metric files, in /dev/shm
        _own(metrics_dir(run_dir), owners.uid, owners.gid, 0o700)
    for name in _SERVICE_FILES:
        if (run_dir / name).exists():
            _own(run_dir / name, owners.uid, owners.gid, 0o600)
    for log in (run_dir / "logs").glob("gunicorn-*.log*"):  # Gunicorn opens these itself
        _own(log, owners.uid, owners.gid, 0o600)
    for name in ("nginx.conf", "supervisord.conf"):  # nginx.conf may hold the cluster secret
        if (run_dir / name).exists():
            _own(run_dir / name, 0, 0, 0o600)
    for secret in _secret_files(settings):
        _own(secret, owners.uid, owners.gid, 0o600)
    _share_store(settings.store_path, owners.gid)
    # rpy2 models run R inside Gunicorn: then the service user loads gatewayr too.
    in_process_r = [library_dir()] if any(kind.language == "r" and not kind.r_pool for kind in (
        KINDS.get(model.backend) for model in settings.models.values())) else []
    check_reachable(owners.user, [run_dir, settings.store_path, *_secret_files(settings), *_python_paths(),
                                  *in_process_r])
    # The R library (gateway.rlib): root's is /var/lib/gateway/rlib, 0755, unless
    # GATEWAY_R_LIBRARY or XDG_DATA_HOME put it elsewhere; then this names what the users lack.
    r_paths = [r_entrypoint("worker.R"), r_entrypoint("script.R"), library_dir()] if plan.all_pools else []
    check_reachable(owners.r_user, [run_dir, *r_paths, *(Path(pool.target) for pool in plan.all_pools)])


def _secret_files(settings: Settings) -> list[Path]:
    server = settings.server
    # Gunicorn probes worker hosts itself (readiness), so it reads the cluster's TLS files too.
    names = [server.api_keys_file, server.cluster_secret_file, server.cluster_ca_file, server.cluster_cert_file,
             server.cluster_key_file]
    return [path for path in (settings.resolve(name) for name in names if name) if path.exists()]


def _share_store(store: Path, gid: int) -> None:
    """Group-readable for the service group (Gunicorn and R workers), nothing for others."""
    if not store.exists():
        return
    for directory, dirs, files in os.walk(store):
        _chgrp(Path(directory), gid, 0o750)
        for name in files:
            path = Path(directory, name)
            if not path.is_symlink():
                _chgrp(path, gid, 0o640)
        dirs[:] = [d for d in dirs if not Path(directory, d).is_symlink()]


def _chgrp(path: Path, gid: int, bits: int) -> None:
    """Add `bits` for owner and group, take every permission from others; keep the owner."""
    st = path.lstat()
    os.chown(path, st.st_uid, gid)
    os.chmod(path, (stat.S_IMODE(st.st_mode) | bits) & 0o770)


def _own(path: Path, uid: int, gid: int, mode: int) -> None:
    os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(path, mode)


def _python_paths() -> list[Path]:
    """What Gunicorn runs: the venv, the interpreter it links to (not under /root: `make deps`
    builds the venv on Debian's python3), and the gateway package."""
    return [Path(sys.executable).parent, Path(sys.executable).resolve(), package_dir()]


def check_reachable(user: str, paths: list[Path]) -> None:
    """Each path is readable (and, if a directory, searchable) by user: test(1) run as that user."""
    account = pwd.getpwnam(user)
    script = 'for p; do if [ -d "$p" ]; then [ -r "$p" ] && [ -x "$p" ]; else [ -r "$p" ]; fi || echo "$p"; done'
    result = subprocess.run(["/bin/sh", "-c", script, "sh", *map(str, paths)], capture_output=True, text=True,
                            user=account.pw_uid, group=account.pw_gid,
                            extra_groups=os.getgrouplist(user, account.pw_gid), check=False)
    missing = result.stdout.split()
    if missing:
        raise PrivilegeError(f"user {user} cannot read {missing[0]} (or a directory above it is not "
                             "searchable); keep the config, store, scripts, run dir and R library "
                             "(docs/install.md) where the service users can reach them, e.g. not under /root or a "
                             "0700 temp dir")
