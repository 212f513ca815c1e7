"""One `gateway reload` at a time per stack.

Two reloads at once would each start pools, render configs and roll Gunicorn from what the other
was half-way through changing. The second one is refused at once with the first one's pid, rather
than queued: the operator decides whether to run it again once the first has finished.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from gateway.private_files import FILE_MODE

LOCK_FILE = "reload.lock"


class ReloadRunning(Exception):
    """Another reload holds the stack's lock (stack.reload raises it as a StackError)."""


@contextlib.contextmanager
def reload_lock(run_dir: Path) -> Iterator[None]:
    """Held for a whole reload; the lock file keeps the holder's pid for the refusal message."""
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "r+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ReloadRunning(f"another `gateway reload` is running on the stack in {run_dir} (pid {holder}); "
                                "run this one again once it has finished") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
