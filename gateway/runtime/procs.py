"""Processes as /proc shows them (psutil is not a dependency): trees, liveness, killing.

A process is its pid plus its start time, so a pid reused by an unrelated process after ours
exited is never mistaken for ours, nor killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # clock ticks after boot (/proc/<pid>/stat field 22)


def family(pid: int) -> set[Proc]:
    """The process and all its live descendants (an empty set if it is gone)."""
    table = _table()
    if pid not in table:
        return set()
    children: dict[int, list[int]] = {}
    for child, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(child)
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(Proc(current, table[current][1]))
        todo.extend(c for c in children.get(current, []) if c in table)
    return found


def alive(procs: set[Proc]) -> set[Proc]:
    """Those still running (zombies count as gone: they hold no port and no file)."""
    return {p for p in procs if _identity(p.pid) == p.start}


def kill(procs: set[Proc], sig: int = signal.SIGKILL) -> None:
    for proc in alive(procs):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)


def wait_gone(procs: set[Proc], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while alive(procs):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def session(sid: int, since: int) -> set[Proc]:
    """This user's live processes of session `sid` that started at or after `since` (clock ticks).

    A daemonized supervisord leads its own session and every program it starts stays in it,
    so its orphans (after a `kill -9` of supervisord or of NGINX's master) are still found here.
    """
    found = set()
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is None or stat[0] in ("Z", "X") or stat[2] < since or _session(int(entry.name)) != sid:
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_uid == os.geteuid() or os.geteuid() == 0:
                found.add(Proc(int(entry.name), stat[2]))
    return found


def session_of(pid: int) -> int | None:
    """The session id of a live pid (None when it is gone)."""
    return _session(pid)


def start_of(pid: int) -> int | None:
    """The start time of a live pid in clock ticks after boot (None when it is gone)."""
    return _identity(pid)


def is_running(pid: int, name: str) -> bool:
    """pid is a live process whose command line mentions name (guards against pid reuse)."""
    if _identity(pid) is None:
        return False
    try:
        return name.encode() in (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a pid, or None when it does not exist."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces
    return fields[0], int(fields[1]), int(fields[19])


def _session(pid: int) -> int | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[3])


def _identity(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None or stat[0] in ("Z", "X") else stat[2]


def _table() -> dict[int, tuple[int, int]]:
    """pid → (ppid, start time) for every live process."""
    table = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] not in ("Z", "X"):
                table[int(entry.name)] = (stat[1], stat[2])
    return table
