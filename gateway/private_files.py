"""Files and directories only their owner can read: keys, rendered configs, run dir, store.

A rendered nginx.conf holds the cluster secret; keys.json, plan.json and the logs say who may
call what. Each file is created 0600 (O_EXCL temp file, then renamed over the target), so there
is never a moment when another local user could open it; directories are made or tightened to
0700. Processes of a stack run with umask 077, so what they create is private too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
UMASK = 0o077


def private_dir(path: str | Path, *, group_may_read: bool = False) -> Path:
    """Create `path` (and missing parents) 0700, or take from it every bit beyond 0700 (0750
    with `group_may_read`: a root-started stack shares its run dir with its service users'
    group, gateway/runtime/privileges.py); returns it."""
    directory = Path(path)
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    allowed = 0o750 if group_may_read else DIR_MODE
    mode = directory.stat().st_mode & 0o777
    if mode & ~allowed:
        os.chmod(directory, mode & allowed)
    return directory


def write_private(path: str | Path, data: str | bytes, *, keep_owner: bool = False) -> Path:
    """Atomically replace `path` with `data`, mode 0600 from the moment the file exists.

    A reader sees the old file or the new one whole; on any error the temp file is removed.
    `keep_owner`: root replacing a file another user reads (the keys of a running stack, read by
    its service user) gives the new file the old one's owner before it takes the name.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    # mkstemp opens with O_CREAT | O_EXCL and mode 0600: no window with a wider mode.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
            if keep_owner and os.geteuid() == 0 and target.exists():
                old = target.stat()
                os.fchown(handle.fileno(), old.st_uid, old.st_gid)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def open_private(path: str | Path) -> int:
    """A new or truncated file for writing (a log), 0600 when created; returns the descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # a file left by an older run may have been wider
    return fd
