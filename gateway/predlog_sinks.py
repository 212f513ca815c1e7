"""Where prediction log lines go: a rotated JSON-lines file, or batches POSTed to a URL.

File: every Gunicorn worker appends to the one file per model, run_dir/logs/predictions-<model>.jsonl
(0600, like the other logs). A batch of whole lines is written with O_APPEND while the worker
holds an exclusive flock on a lock file beside it; the size check and the rotation happen under
the same lock. So lines of concurrent workers never interleave whatever their length (PIPE_BUF
bounds only pipes, and a line with a large input is longer), one file stays readable in order,
and rotation is done by exactly one worker: `<file>.1` .. `<file>.<backups>` as the other logs.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import urllib3

LOCK_SUFFIX = ".lock"


class FileSink:
    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups

    def write(self, data: bytes) -> bool:
        """Append whole lines; False when the disk refused them (the caller counts them dropped)."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # run_dir/logs, made by `up`
            lock = os.open(f"{self.path}{LOCK_SUFFIX}", os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(data) > self.max_bytes:
                self._rotate()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            return True
        except OSError:
            return False
        finally:
            os.close(lock)  # releases the flock

    def _rotate(self) -> None:
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for index in range(self.backups, 0, -1):
            source = self.path if index == 1 else Path(f"{self.path}.{index - 1}")
            if source.exists():
                os.replace(source, f"{self.path}.{index}")


class HttpSink:
    """POSTs each batch as application/x-ndjson; anything but a 2xx in time is a failure."""

    TIMEOUT = urllib3.Timeout(connect=2.0, read=5.0)

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: urllib3.PoolManager | None = None  # made in the writer thread, after the fork

    def write(self, data: bytes) -> bool:
        if self._pool is None:
            self._pool = urllib3.PoolManager(timeout=self.TIMEOUT, retries=False)
        try:
            response = self._pool.request("POST", self.url, body=data,
                                          headers={"Content-Type": "application/x-ndjson"})
        except urllib3.exceptions.HTTPError:
            return False
        return 200 <= response.status < 300
