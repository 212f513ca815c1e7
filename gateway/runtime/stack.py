"""Start, stop, inspect and reload a stack: supervisord and everything it runs, in one run_dir.

supervisord is the only process we start; it owns NGINX, Gunicorn and the R pools. `down`
waits until every process of the stack is gone, so a port or a file is never left held. The
daemonized supervisord leads its own session, recorded in run_dir at `up`: after a `kill -9` of
supervisord or of NGINX's master, their orphans are still found (and stopped) by that session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from gateway import tracing
from gateway.backends import KINDS
from gateway.backends.r_reply import last_r_error
from gateway.errors import ConfigError
from gateway.hoststate import client_context
from gateway.metrics import RESTARTS_FILE, metrics_dir
from gateway.private_files import UMASK, open_private, private_dir, write_private
from gateway.probe import get_status
from gateway.registry import Checked, check_models, pin_versions
from gateway.rlib import ensure_r_library
from gateway.runtime import privileges, procs
from gateway.runtime.live_pools import PoolChange, program_inputs, replan
from gateway.runtime.plan import PLAN_FILE, Endpoint, Plan, PoolPlan, make_plan, make_worker_plan, socket_dir
from gateway.runtime.reload_lock import ReloadRunning, reload_lock
from gateway.runtime.render import (
    GRACEFUL_TIMEOUT_S,
    RELAY_DIR,
    SETTINGS_COPY,
    WORKERS_READY_DIR,
    bin_path,
    nginx_command,
    render_all,
    supervisor_socket,
)
from gateway.script_deps import check_pool_scripts
from gateway.settings import Settings, cluster_secret, cluster_tls, load_settings

SUPERVISORD_PID = "supervisord.pid"
SESSION_FILE = "session.json"  # the daemonized supervisord's session: {"sid", "start"}
_ERROR_WORDS = re.compile(r"error|exception|traceback|fatal|emerg|crit|failed", re.IGNORECASE)


class StackError(Exception):
    """The stack could not be started, stopped or reloaded; the message says what to look at."""


def up(settings: Settings, *, port: int | None = None, foreground: bool = False,
       wait_s: float = 90.0, listen: str | None = None) -> Plan:
    """Start the stack and return its plan once GET /readyz answers 200 through NGINX.

    Raises StackError (after stopping whatever did start) with supervisord's view and the
    log lines that mention an error. With foreground=True this process becomes supervisord.
    With `listen` (a worker host's private address) only the R pools that the config assigns to
    that address start, each behind an NGINX on it; ready when each answers its health route.
    """
    run_dir = private_dir(settings.run_dir)
    running = _supervisord_pid(run_dir)
    if running is not None:
        raise StackError(f"a stack is already running in {run_dir} (supervisord pid {running}); "
                         "stop it with `gateway down` or use another server.run_dir")
    orphans = procs.alive(_session_members(run_dir))
    if orphans:
        raise StackError(f"processes of an earlier stack in {run_dir} outlived its supervisord "
                         f"(pids {sorted(p.pid for p in orphans)}); stop them with `gateway down`")
    shutil.rmtree(run_dir / RELAY_DIR, ignore_errors=True)  # sockets of a stack that was killed
    tracing.wanted(_child_env())  # a bad OTEL_* setting: one line now, not a Gunicorn boot loop
    if listen is None:
        plan = make_plan(settings, port=port)
        # Fail here, in seconds and with the config's words, before anything starts: every
        # version the config names is checked (sha256, trust) without loading it.
        verified = check_models(settings, plan)
    else:
        plan, verified = make_worker_plan(settings, listen), None
    if uses_r(settings):
        ensure_r_library()  # the first use of R: gatewayr goes into the R library (gateway.rlib)
    # A missing R package: one line now, not a crash loop. Its Rscript (0.15 s idle) runs while the
    # configs are written; nothing starts before it has answered, and its error comes first.
    with ThreadPoolExecutor(max_workers=1) as background:
        scripts_checked = background.submit(check_pool_scripts, settings, plan)
        try:
            files = _prepare(settings, plan, verified, foreground)
        except BaseException:
            scripts_checked.result()
            raise
        scripts_checked.result()
    command = [str(bin_path("supervisord")), "-c", str(files["supervisord"])]
    if foreground:
        os.umask(UMASK)
        os.execve(command[0], command, _child_env())
    start_log = run_dir / "logs" / "supervisord-start.log"
    with os.fdopen(open_private(start_log), "wb") as out:
        started = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 env=_child_env(), check=False, umask=UMASK)
    if started.returncode != 0:
        raise StackError(f"supervisord did not start: {start_log.read_text(errors='replace').strip()}")
    _record_session(run_dir)
    try:
        _wait_ready(settings, plan, wait_s)
    except StackError as exc:
        report = f"{exc}\n{_diagnostics(run_dir)}"
        down(run_dir)
        raise StackError(report) from None
    except KeyboardInterrupt:  # Ctrl-C while waiting: leave nothing half-started behind
        down(run_dir)
        raise
    return plan


def _prepare(settings: Settings, plan: Plan, verified: Checked | None, foreground: bool) -> dict[str, Path]:
    """Everything `up` writes before supervisord starts: the plan, the configs, the sockets'
    directories and the service users' rights; returns the rendered files."""
    run_dir = Path(plan.run_dir)
    _check_ports_free(plan)
    plan.save()
    if verified is not None:
        pin_versions(plan, verified)  # what a restarted worker serves: the versions checked above
    _fresh_metrics(run_dir)
    files = render_all(settings, plan, foreground=foreground)
    owners = privileges.accounts(settings)
    privileges.prepare_sockets(plan, socket_dir(run_dir), owners)
    privileges.grant(settings, plan, owners)
    return files


def uses_r(settings: Settings) -> bool:
    """Some configured model or script runs in R (a pool or in-process): the stack needs gatewayr."""
    return any(KINDS.get(model.backend).language == "r" for model in settings.models.values())


def down(run_dir: str | Path, timeout_s: float = 30.0) -> None:
    """Stop the stack in run_dir and wait until supervisord and all its descendants are gone.

    Processes of the stack's session that supervisord no longer owns (it was killed, or NGINX's
    master was and left its workers behind) get SIGTERM once supervisord is gone. Leftovers are
    SIGKILLed after timeout_s. No running stack is not an error.
    """
    run_dir = Path(run_dir)
    pid = _supervisord_pid(run_dir)
    family = (procs.family(pid) if pid is not None else set()) | _session_members(run_dir)
    if not procs.alive(family):
        _forget(run_dir)  # a stack that died by itself leaves its metrics files in memory
        return
    supervisord = {p for p in family if p.pid == pid}
    if pid is not None:
        try:
            _rpc(run_dir, "shutdown")
        except (OSError, xmlrpc.client.Error):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    orphans_stopped = False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid is not None:
            family |= procs.family(pid)  # a program supervisord restarted just before the stop
        if not orphans_stopped and not procs.alive(supervisord):
            # Nobody else will stop these: supervisord only stops its own children.
            family |= _session_members(run_dir)
            procs.kill(family, signal.SIGTERM)
            orphans_stopped = True
        if not procs.alive(family):
            _forget(run_dir)
            return
        time.sleep(0.1)
    leftovers = procs.alive(family)
    procs.kill(leftovers)
    if not procs.wait_gone(leftovers, 5.0):
        raise StackError(f"processes of the stack in {run_dir} survived SIGKILL: "
                         f"{sorted(p.pid for p in procs.alive(leftovers))}")
    _forget(run_dir)


def _forget(run_dir: Path) -> None:
    """Once every process is gone: the session record, the in-memory metrics files and the
    sockets go too."""
    (run_dir / SESSION_FILE).unlink(missing_ok=True)
    shutil.rmtree(metrics_dir(run_dir), ignore_errors=True)
    privileges.remove_sockets(run_dir)


def status(run_dir: str | Path) -> str:
    """supervisord's view of every program, then one line per model from GET /readyz.

    A model line starts with its name: `mtcars  plumber  ready  2/2 workers live`.
    """
    run_dir = Path(run_dir)
    if _supervisord_pid(run_dir) is None:
        orphans = procs.alive(_session_members(run_dir))
        if orphans:
            return (f"supervisord of the stack in {run_dir} is gone, but {len(orphans)} of its processes "
                    f"still run (pids {sorted(p.pid for p in orphans)}); stop them with `gateway down`")
        return f"no stack is running in {run_dir}"
    programs = _supervisorctl(run_dir, "status").stdout.rstrip()
    plan = Plan.load(run_dir / PLAN_FILE)
    if plan.role == "worker":
        pools = [f"{name} on {plan.listens[name].address}" for name in plan.pools]
        return programs + "\n\nworker host serving: " + ", ".join(pools)
    code, body = _get(_url(plan.public, "/readyz"))
    listed_code, listed = _get(_url(plan.public, "/models"))
    lines = [programs, "", f"models (GET /readyz → {code or 'no answer'}):"]
    lines += _model_lines(run_dir, body if code else "", listed if listed_code == 200 else "")
    return "\n".join(lines)


def _model_lines(run_dir: Path, readyz: str, models: str) -> list[str]:
    """A table: model, version, backend, ready, workers (and why a model is not ready)."""
    settings = load_settings(run_dir / SETTINGS_COPY, env={})
    health = _json_field(readyz, "models", {})
    versions = {m.get("name"): str(m.get("version")) for m in _json_field(models, "models", [])}
    rows = [["model", "version", "backend", "ready", "workers"]]
    details = {}
    for name, model in settings.models.items():
        entry = health.get(name, {})
        workers = entry.get("workers")
        rows.append([name, versions.get(name, "?"), model.backend, "yes" if entry.get("ready") else "no",
                     f"{workers['live']}/{workers['total']} live" if workers else "-"])
        if entry.get("detail"):
            details[name] = entry["detail"]
        for address, answering in (entry.get("hosts") or {}).items():
            rows.append([f"  {name}@{address}", "", "", "yes" if answering else "no", "host"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines += [f"{name}: {detail}" for name, detail in details.items()]
    return lines


def _json_field(text: str, key: str, default: Any) -> Any:
    try:
        return json.loads(text)[key]
    except (ValueError, KeyError, TypeError):
        return default


def reload(settings: Settings, wait_s: float = 90.0) -> Plan:
    """_reload, one at a time per stack (gateway.runtime.reload_lock)."""
    if _supervisord_pid(settings.run_dir) is None:
        raise StackError(f"no stack is running in {settings.run_dir}; start it with `gateway up`")
    try:
        with reload_lock(settings.run_dir):
            return _reload(settings, wait_s)
    except ReloadRunning as exc:
        raise StackError(str(exc)) from None


def _reload(settings: Settings, wait_s: float) -> Plan:
    """Apply changed settings to the running stack, keeping its ports; R pools change live.

    Re-renders every config, starts the R pools the config adds or changes (a new version,
    script, worker count or timeout) beside the running ones and waits until each new worker
    answers its health route, reloads NGINX, then replaces every Gunicorn worker (the new ones
    re-read the settings, the plan and the store) without a moment when no worker is ready.
    Only then are the pools nobody routes to any more taken out of NGINX (its old workers finish
    their requests) and stopped. Returns once every old worker is gone, so each request sent
    after that is answered with the new settings and versions.

    Raises StackError, with what R said, when a new pool cannot start within wait_s: its
    programs and the rendered configs are rolled back and the old pools keep serving.
    """
    run_dir = settings.run_dir
    if _supervisord_pid(run_dir) is None:
        raise StackError(f"no stack is running in {run_dir}; start it with `gateway up`")
    running = Plan.load(run_dir / PLAN_FILE)
    if running.role == "worker":  # a worker host's pools follow its gateway's: down and up
        _check_same_pools(settings, running)
        change = PoolChange(running, (), ())
    else:
        change = replan(settings, running, replace_all=_program_inputs_changed(settings, run_dir))
    plan = change.plan
    # Nothing changes unless every version the new config names checks out: a new version that
    # cannot load leaves the old one serving, and the ConfigError says why in one line.
    verified = check_models(settings, plan)
    if uses_r(settings):
        ensure_r_library()
    check_pool_scripts(settings, dataclasses.replace(plan, pools={}, extra_pools={p.key: p for p in change.started}))
    rendered = {name: (run_dir / name).read_bytes() for name in _RENDERED if (run_dir / name).exists()}
    render_all(settings, change.transition)
    privileges.grant(settings, change.transition, privileges.accounts(settings))
    changed = {name for name, text in rendered.items() if (run_dir / name).read_bytes() != text}
    try:
        _check_nginx(run_dir)
        _supervisorctl(run_dir, "reread", check=True)
        _supervisorctl(run_dir, "update", check=True)  # starts the new pools' programs
        _wait_pools_healthy(run_dir, change.started, wait_s)
    except StackError:
        _restore(run_dir, rendered)  # the new programs go; NGINX and Gunicorn never saw them
        raise
    # An NGINX reload closes the old workers' idle keep-alive connections; a client that writes
    # on one at that instant must re-send (gateway.client does). Reload only on a real change.
    if "nginx.conf" in changed:
        _reload_nginx(run_dir)
    plan.save()  # the new Gunicorn workers route by it; the old ones finish on the old pools
    pin_versions(plan, verified)  # the new workers (and any restarted later) serve these
    if change.started or change.retired:
        _restart_watchdog(run_dir)  # it reads the plan at its start: watch the new workers
    if "gunicorn.conf.py" in changed:
        _hup_gunicorn(run_dir, settings.server.workers)  # only a HUP makes Gunicorn re-read it
    else:
        _roll_gunicorn(run_dir)
    if plan.role == "gateway":  # the job runner loads the models itself; it resumes where it was
        _supervisorctl(run_dir, "restart", "jobs", check=True)
    if change.retired:
        _retire(settings, plan, change.retired)
    return plan


def _program_inputs_changed(settings: Settings, run_dir: Path) -> bool:
    """Whether the R programs' sections change for every pool (their log rotation, their user)."""
    try:
        rendered_from = load_settings(run_dir / SETTINGS_COPY, env={})
    except (OSError, ConfigError):
        return False  # nothing to compare with: the pools' own changes decide
    return program_inputs(rendered_from) != program_inputs(settings)


# Everything render_all writes: put back as it was when a new pool cannot start.
_RENDERED = (SETTINGS_COPY, "nginx.conf", "supervisord.conf", "gunicorn.conf.py")


def _check_nginx(run_dir: Path) -> None:
    checked = subprocess.run([*nginx_command(run_dir), "-t"], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        raise StackError(f"the re-rendered nginx.conf is invalid; NGINX keeps the old one:\n"
                         f"{checked.stderr.strip()}")


def _reload_nginx(run_dir: Path) -> None:
    reloaded = subprocess.run([*nginx_command(run_dir), "-s", "reload"], capture_output=True,
                              text=True, check=False)
    if reloaded.returncode != 0:
        raise StackError(f"nginx -s reload failed: {reloaded.stderr.strip()}")


def _restore(run_dir: Path, rendered: dict[str, bytes]) -> None:
    """Put the configs back as they were and let supervisord stop and drop the programs they
    no longer name (best effort: the caller raises the cause)."""
    for name, text in rendered.items():
        write_private(run_dir / name, text, keep_owner=True)
    with contextlib.suppress(StackError, OSError):
        _supervisorctl(run_dir, "reread", check=True)
        _supervisorctl(run_dir, "update", check=True)


def _wait_pools_healthy(run_dir: Path, pools: tuple[PoolPlan, ...], wait_s: float) -> None:
    """Every local worker of the new pools answers its health route, as NGINX will reach it.

    Raises StackError naming the model and what R said when a program goes FATAL (supervisord
    gave up after its start retries) or a worker is still silent after wait_s.
    """
    waiting = {(pool, program, endpoint) for pool in pools
               for program, endpoint in zip(pool.programs, pool.workers, strict=True)}
    deadline = time.monotonic() + wait_s
    while waiting:
        fatal = set(_fatal_programs(run_dir))
        failed = [(pool, program) for pool, program, _ in sorted(waiting, key=lambda w: w[1]) if program in fatal]
        if failed:
            raise StackError("\n".join(_new_pool_line(run_dir, pool, program, "could not be started (FATAL in "
                                                       "supervisord)") for pool, program in failed))
        waiting = {w for w in waiting if get_status(w[2], w[0].health_path, 2.0) != 200}
        if waiting and time.monotonic() > deadline:
            raise StackError("\n".join(_new_pool_line(run_dir, pool, program, f"did not answer within {wait_s:g} s")
                                       for pool, program, _ in sorted(waiting, key=lambda w: w[1])))
        if waiting:
            time.sleep(0.2)


def _new_pool_line(run_dir: Path, pool: PoolPlan, program: str, what: str) -> str:
    """`model 'x': version 2 (plumber-x--g1-1) could not be started ...; R said: ...; nothing changed, ...`."""
    error = last_r_error(run_dir / "logs" / f"{program}.log")
    said = f"; R said: {error}" if error else ""
    return (f"model '{pool.model}': version {pool.version} ({program}) {what}{said}; nothing changed, "
            "the running versions keep serving")


def _restart_watchdog(run_dir: Path) -> None:
    with contextlib.suppress(OSError, xmlrpc.client.Error):  # no pools: no watchdog
        _rpc(run_dir, "stopProcess", "watchdog")
        _rpc(run_dir, "startProcess", "watchdog")


def _retire(settings: Settings, plan: Plan, retired: tuple[PoolPlan, ...]) -> None:
    """Once no Gunicorn worker routes to the retired pools: out of NGINX, whose old workers finish
    what they still proxy to them, then their programs stop (supervisord: removed groups)."""
    run_dir = Path(plan.run_dir)
    render_all(settings, plan)
    privileges.grant(settings, plan, privileges.accounts(settings))
    _check_nginx(run_dir)
    master = pids(run_dir).get("nginx")
    draining = {p for p in procs.family(master) if p.pid != master} if master else set()
    _reload_nginx(run_dir)
    longest = max(pool.timeout_s for pool in retired)
    procs.wait_gone(draining, longest + GRACEFUL_TIMEOUT_S)  # an old worker may hold a slow client
    _supervisorctl(run_dir, "reread", check=True)
    _supervisorctl(run_dir, "update", check=True)


def gunicorn_workers(run_dir: str | Path, master: int | None = None) -> set[procs.Proc]:
    """The Gunicorn master's live worker processes (not the master itself).

    Pass the master's pid when it is known: asking supervisord costs a round trip."""
    master = master or pids(run_dir).get("gunicorn")
    if master is None:
        return set()
    return {p for p in procs.family(master) if p.pid != master}


def _roll_gunicorn(run_dir: Path) -> None:
    """Replace the Gunicorn workers one at a time: add a worker (TTIN), wait until it has loaded
    the app and its models, then retire the oldest (TTOU, a graceful stop). A HUP would stop the
    old workers at once and leave nobody to answer while the new ones import and load."""
    master = pids(run_dir)["gunicorn"]  # the master stays: asked once, not on every poll
    old = gunicorn_workers(run_dir, master)
    for retired in range(1, len(old) + 1):
        present = gunicorn_workers(run_dir, master)
        _rpc(run_dir, "signalProcess", "gunicorn", "TTIN")

        def grown(present: set[procs.Proc] = present) -> bool:
            return bool(_ready_workers(run_dir, master) - present)

        def shrunk(retired: int = retired) -> bool:
            return len(old - procs.alive(old)) >= retired

        _wait_for(run_dir, grown, "a new worker to load the app")
        _rpc(run_dir, "signalProcess", "gunicorn", "TTOU")  # Gunicorn stops its oldest worker
        _wait_for(run_dir, shrunk, "an old worker to stop")


def _hup_gunicorn(run_dir: Path, count: int) -> None:
    """Gunicorn re-reads its config, starts `count` new workers and stops the old ones at once."""
    master = pids(run_dir)["gunicorn"]
    old = gunicorn_workers(run_dir, master)
    _rpc(run_dir, "signalProcess", "gunicorn", "HUP")
    _wait_for(run_dir, lambda: not procs.alive(old) and len(_ready_workers(run_dir, master) - old) >= count,
              "the new workers to load the app")


def _ready_workers(run_dir: Path, master: int) -> set[procs.Proc]:
    """Live workers that have loaded the app (their post_worker_init marker exists)."""
    return {p for p in gunicorn_workers(run_dir, master) if (run_dir / WORKERS_READY_DIR / str(p.pid)).exists()}


def _wait_for(run_dir: Path, done: Callable[[], bool], what: str) -> None:
    """Poll `done` until true; old workers may take graceful_timeout to finish their requests."""
    limit_s = GRACEFUL_TIMEOUT_S + 60
    deadline = time.monotonic() + limit_s
    while not done():
        if time.monotonic() > deadline:
            raise StackError(f"gave up after {limit_s} s waiting for {what}; "
                             f"see {run_dir}/logs/gunicorn-error.log")
        time.sleep(0.05)


def wait_while_running(run_dir: str | Path, poll_s: float = 0.5) -> None:
    """Block until the stack's supervisord is gone (Ctrl-C raises KeyboardInterrupt out of here)."""
    while _supervisord_pid(Path(run_dir)) is not None:
        time.sleep(poll_s)


def pids(run_dir: str | Path) -> dict[str, int]:
    """Program name (`nginx`, `gunicorn`, `plumber-<model>-<i>`) → pid, for running programs."""
    infos: list[dict[str, Any]] = _rpc(Path(run_dir), "getAllProcessInfo")
    return {info["name"]: info["pid"] for info in infos if info["pid"]}


def public_url(plan: Plan) -> str:
    """Where a client on this host reaches the stack."""
    return f"http://{_connect_host(plan.public.host)}:{plan.public.port}"


def _wait_ready(settings: Settings, plan: Plan, wait_s: float) -> None:
    if plan.role == "worker":
        _wait_worker_ready(settings, plan, wait_s)
        return
    run_dir = Path(plan.run_dir)
    url = _url(plan.public, "/readyz")
    start = time.monotonic()
    last = "no answer yet"
    while True:
        elapsed = time.monotonic() - start
        parts = _parts_up(run_dir, plan)  # before asking: a part that comes up meanwhile ends the nap
        if _supervisord_pid(run_dir) is None and elapsed > 5:
            raise StackError("supervisord exited during start-up")
        fatal = _fatal_programs(run_dir)
        optional_down = {p.model for p in plan.all_pools if settings.models[p.model].optional
                         and any(name.startswith(f"plumber-{p.key}-") for name in fatal)}
        required = [name for name in fatal if _program_model(name, plan) not in optional_down]
        code, body = _get(url)
        if required:  # the cause first, one line per program: what R said last in its log
            raise StackError("\n".join(_fatal_line(run_dir, name, _program_model(name, plan)) for name in required))
        if code == 503 and (failed := _required_failures(settings, body)):
            raise StackError("\n".join(f"model '{name}': {detail}" for name, detail in failed.items()))
        if code == 200 or (code == 503 and _only_optional_failed(settings, body, optional_down)):
            return
        if code:
            last = f"{code} {body[:500]}"
        if elapsed > wait_s:
            raise StackError(f"the stack was not ready within {wait_s:g} s; GET {url}: {last}")
        _nap(run_dir, plan, 0.2, parts)


def _nap(run_dir: Path, plan: Plan, longest_s: float, seen: tuple[int, ...]) -> None:
    """Sleep until a part of the stack has come up since `seen` (a Gunicorn worker has loaded the
    app, an R worker listens on its socket), at most `longest_s`: /readyz is asked again the
    moment it may have changed, not up to `longest_s` later. A look is a directory listing and a
    few stat calls (~0.1 ms every 10 ms); asking /readyz costs ~3 ms of CPU across the stack."""
    deadline = time.monotonic() + longest_s
    while time.monotonic() < deadline:
        time.sleep(0.01)
        if _parts_up(run_dir, plan) != seen:
            return


def _parts_up(run_dir: Path, plan: Plan) -> tuple[int, ...]:
    """Gunicorn workers that have loaded the app, then when each local R worker's socket was made
    (0: none yet; a worker binding its socket replaces the file an earlier stack left)."""
    try:
        booted = len(os.listdir(run_dir / WORKERS_READY_DIR))
    except OSError:
        booted = 0
    return booted, *(_made(w.path) for pool in plan.all_pools for w in pool.workers if w.path)


def _made(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def _wait_worker_ready(settings: Settings, plan: Plan, wait_s: float) -> None:
    """Every pool answers its health route through this host's NGINX, as the gateway will call it."""
    headers = {"X-Gateway-Secret": cluster_secret(settings)} if cluster_secret(settings) else {}
    tls = cluster_tls(settings)  # the host's own certificate serves as the client's too
    context = client_context(tls) if tls else None
    deadline = time.monotonic() + wait_s
    waiting = dict(plan.pools)
    while waiting:
        fatal = _fatal_programs(Path(plan.run_dir))
        if fatal:
            raise StackError(f"{', '.join(fatal)} could not be started (FATAL in supervisord)")
        for name, pool in list(waiting.items()):
            url = _url(plan.listens[name], pool.health_path)
            code, _ = _get(url.replace("http://", "https://", 1) if context else url, headers, context)
            if code == 200:
                del waiting[name]
        if time.monotonic() > deadline:
            raise StackError(f"pools not ready within {wait_s:g} s: {', '.join(waiting)}")
        time.sleep(0.2)


def _fresh_metrics(run_dir: Path) -> None:
    """A new stack counts from zero: no per-process metric files or restart counts of the last one."""
    shutil.rmtree(metrics_dir(run_dir), ignore_errors=True)
    metrics_dir(run_dir).mkdir(mode=0o700, parents=True)
    (run_dir / RESTARTS_FILE).unlink(missing_ok=True)


def _only_optional_failed(settings: Settings, body: str,
                          optional_down: frozenset[str] | set[str] = frozenset()) -> bool:
    """Models marked optional that failed (to load, or whose R pool went FATAL) do not hold the
    start-up back; the rest is up. They stay not ready, with the reason, in /readyz."""
    try:
        models = json.loads(body)["models"]
    except (ValueError, KeyError, TypeError):
        return False
    waiting = {name: entry for name, entry in models.items() if not entry.get("ready")}
    return bool(waiting) and all(
        name in settings.models and settings.models[name].optional
        and (str(entry.get("detail", "")).startswith("failed to load") or name in optional_down)
        for name, entry in waiting.items()
    )


def _required_failures(settings: Settings, body: str) -> dict[str, str]:
    """Models not marked optional that a Gunicorn worker could not load: model → reason."""
    models = _json_field(body, "models", {})
    return {name: str(entry.get("detail")) for name, entry in models.items()
            if isinstance(entry, dict) and name in settings.models and not settings.models[name].optional
            and str(entry.get("detail", "")).startswith("failed to load")}


def _fatal_line(run_dir: Path, program: str, model: str | None) -> str:
    """`model 'x': plumber-x-1 could not be started (FATAL in supervisord); R said: Error ...`."""
    error = last_r_error(run_dir / "logs" / f"{program}.log")
    said = f"; R said: {error}" if error else ""
    prefix = f"model '{model}': " if model else ""
    return f"{prefix}{program} could not be started (FATAL in supervisord){said}"


def _program_model(program: str, plan: Plan) -> str | None:
    """The model an R worker program serves (`plumber-<pool key>-<i>`), None for the others."""
    for pool in plan.all_pools:
        if program.startswith(f"plumber-{pool.key}-") and program.removeprefix(f"plumber-{pool.key}-").isdigit():
            return pool.model
    return None


def _fatal_programs(run_dir: Path) -> list[str]:
    try:
        infos = _rpc(run_dir, "getAllProcessInfo")
    except (OSError, xmlrpc.client.Error):
        return []  # not listening yet
    return [info["name"] for info in infos if info["statename"] == "FATAL"]


def _diagnostics(run_dir: Path) -> str:
    """supervisorctl status and the tail of every log that mentions an error."""
    parts = []
    with contextlib.suppress(OSError, StackError):
        parts.append("supervisorctl status:\n" + _supervisorctl(run_dir, "status").stdout.rstrip())
    for log in sorted((run_dir / "logs").glob("*.log")):
        text = log.read_text(encoding="utf-8", errors="replace")
        if _ERROR_WORDS.search(text):
            tail = "\n".join(text.rstrip().splitlines()[-20:])
            parts.append(f"--- {log} (last 20 lines):\n{tail}")
    return "\n".join(parts)


def _check_same_pools(settings: Settings, plan: Plan) -> None:
    """A worker host's R pools are pinned at its start (versions, workers): its reload cannot
    start or stop one (a gateway's reload replaces pools live: gateway.runtime.live_pools)."""
    wanted = {p.key: (p.version, len(p.workers)) for p in make_plan(settings).all_pools}
    have = {p.key: (p.version, len(p.workers)) for p in plan.all_pools}
    if wanted != have:
        raise StackError(f"the R pools changed (running: {have or 'none'}, configured: "
                         f"{wanted or 'none'}); restart with `gateway down` and `gateway up`")


def _check_ports_free(plan: Plan) -> None:
    endpoints = [plan.public, plan.gunicorn, plan.internal] if plan.role == "gateway" else []
    endpoints += [w for pool in plan.all_pools for w in pool.workers]
    endpoints += list(plan.listens.values())
    for endpoint in (e for e in endpoints if not e.path):  # sockets: fresh directory at every up
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((endpoint.host, endpoint.port))
            except OSError as exc:
                raise StackError(f"cannot listen on {endpoint.address} ({exc.strerror}); stop what "
                                 "holds it, or pick another port (--port, server.port)") from None


def _record_session(run_dir: Path, wait_s: float = 10.0) -> None:
    """Note the daemonized supervisord's session, so `down` finds its processes even once it is gone.

    supervisord writes its pid file after it has forked away from us: wait for it briefly.
    Not recorded in the foreground (containers): there the session is the caller's, not ours.
    """
    deadline = time.monotonic() + wait_s
    while (pid := _supervisord_pid(run_dir)) is None:
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)
    start = procs.start_of(pid)
    if procs.session_of(pid) == pid and start is not None:
        write_private(run_dir / SESSION_FILE, json.dumps({"sid": pid, "start": start}))


def _session_members(run_dir: Path) -> set[procs.Proc]:
    """Live processes of the recorded supervisord session (empty if none was recorded, or if
    its leader's pid now belongs to another process: then that whole session is long gone)."""
    try:
        raw = json.loads((run_dir / SESSION_FILE).read_text(encoding="utf-8"))
        sid, start = int(raw["sid"]), int(raw["start"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    leader = procs.start_of(sid)
    if leader is not None and leader != start:
        return set()
    return procs.session(sid, start)


def _supervisord_pid(run_dir: Path) -> int | None:
    """The pid of the live supervisord of run_dir, or None (no pid file, stale or reused pid)."""
    try:
        pid = int((run_dir / SUPERVISORD_PID).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if procs.is_running(pid, "supervisord") else None


def _rpc(run_dir: Path, method: str, *args: Any) -> Any:
    """One XML-RPC call to supervisord over its unix socket; the connection is always closed."""
    transport = SupervisorTransport(None, None, f"unix://{supervisor_socket(run_dir)}")
    try:
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        return getattr(proxy.supervisor, method)(*args)
    finally:
        transport.close()


def _supervisorctl(run_dir: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    command = [str(bin_path("supervisorctl")), "-c", str(run_dir / "supervisord.conf"), *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise StackError(f"supervisorctl {' '.join(args)} failed: {(result.stdout + result.stderr).strip()}")
    return result


def _child_env() -> dict[str, str]:
    # The stack reads the rendered settings copy only: GATEWAY_* overrides are already applied
    # there, and applying a relative path override again would resolve it elsewhere.
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}


def _connect_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)


def _url(endpoint: Endpoint, path: str) -> str:
    return f"http://{_connect_host(endpoint.host)}:{endpoint.port}{path}"


def _get(url: str, headers: dict[str, str] | None = None,
         context: ssl.SSLContext | None = None) -> tuple[int, str]:
    """(status, body); (0, reason) when nothing answers. Never through a proxy: loopback."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=5) as reply:
            return reply.status, reply.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as exc:
        return 0, str(exc)
