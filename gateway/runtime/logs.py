"""`gateway logs`: every log of a stack's run_dir, merged in time order, optionally for one model.

Each file has its own timestamp format (JSON `time` fields from the gateway, NGINX and the R
workers; supervisord, Gunicorn and NGINX's error log in their own text forms). A line without
a timestamp (a traceback) keeps the time of the line before it, so it stays with its cause.
Only the tail of each file is read: the output is bounded by `lines`, however large the logs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

TAIL_BYTES = 1 << 20  # per file: enough for `lines`, bounded however big the file has grown
# (pattern, strptime format, the time is UTC without saying so)
_TEXT_STAMPS = [
    # R workers' text lines: [gatewayr 2026-01-02T03:04:05Z pid 7]
    (re.compile(r"^\[gatewayr (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"), "%Y-%m-%dT%H:%M:%SZ", True),  # UTC
    # supervisord (local time): 2026-01-02 03:04:05,678 INFO ...
    (re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "), "%Y-%m-%d %H:%M:%S,%f", False),
    # Gunicorn's error log: [2026-01-02 03:04:05 +0000] [pid] [INFO] ...
    (re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4})\]"), "%Y-%m-%d %H:%M:%S %z", False),
    # Gunicorn's access log: 127.0.0.1 - - [02/Jan/2026:03:04:05 +0000] "GET ...
    (re.compile(r"^\S+ \S+ \S+ \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]"), "%d/%b/%Y:%H:%M:%S %z", False),
    # NGINX's error log (local time): 2026/01/02 03:04:05 [error] ...
    (re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \["), "%Y/%m/%d %H:%M:%S", False),
]


@dataclass(order=True)
class Line:
    when: float
    order: int  # position in its file: equal times keep the file's own order
    source: str = field(compare=False)
    text: str = field(compare=False)

    def render(self) -> str:
        return f"{self.source} | {self.text}"


def timestamp(text: str) -> float | None:
    """Seconds since the epoch of a log line, or None when it carries no time we know."""
    if text.startswith("{"):
        try:
            entry = json.loads(text)
            stamp = entry.get("time")
        except (ValueError, AttributeError):
            return None
        if isinstance(entry.get("msec"), float | int):  # NGINX: its ISO time has whole seconds
            return float(entry["msec"])
        if isinstance(stamp, str):
            try:
                return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
        return None
    for pattern, form, utc in _TEXT_STAMPS:
        match = pattern.match(text)
        if match:
            parsed = datetime.strptime(match.group(1), form)
            if utc:
                parsed = parsed.replace(tzinfo=UTC)
            # Otherwise zoned (%z) or naive, and a naive time is local, as the program wrote it.
            return parsed.timestamp()
    return None


def log_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in (Path(run_dir) / "logs").glob("*.log") if p.is_file())


def about_model(source: str, text: str, model: str) -> bool:
    """Is this line about `model`: its R workers' files, or a request line naming it."""
    if source.startswith(f"plumber-{model}-") or f"plumber-{model}-" in text:  # supervisord about them
        return True
    if source.startswith("plumber-") or not text.startswith("{"):
        return False
    try:
        entry = json.loads(text)
    except ValueError:
        return False
    if entry.get("model") == model:
        return True
    uri = str(entry.get("uri", ""))
    return any(uri.startswith(prefix) for prefix in (f"/models/{model}/", f"/r/{model}/", f"/plumber/{model}/"))


def parse(source: str, texts: Iterable[str], start_order: int = 0, last: float = 0.0) -> list[Line]:
    lines = []
    for order, text in enumerate(texts, start_order):
        if not text.strip():
            continue
        when = timestamp(text)
        last = last if when is None else when
        lines.append(Line(last, order, source, text))
    return lines


def merged(run_dir: Path, model: str | None = None, lines: int = 200) -> list[Line]:
    """The last `lines` lines of every log, oldest first."""
    return _snapshot(run_dir, model, lines)[0]


def follow(run_dir: Path, out: TextIO, model: str | None = None, lines: int = 200,
           stopped: Callable[[], bool] = lambda: False, poll_s: float = 0.5) -> None:
    """Print the last `lines`, then new lines as they are written, until stopped() (or Ctrl-C).

    New lines are merged in time order within each poll; a file that shrank was rotated by
    supervisord, so it is read again from its start.
    """
    first, offsets = _snapshot(run_dir, model, lines)
    _write(first, out)
    while not stopped():
        time.sleep(poll_s)
        fresh: list[Line] = []
        for path in log_files(run_dir):
            size = path.stat().st_size
            start = offsets.get(path, 0)
            if size < start:
                start = 0
            if size == start:
                continue
            with path.open("rb") as handle:
                handle.seek(start)
                chunk = handle.read(size - start)
            complete = chunk.rfind(b"\n") + 1  # a half-written line waits for the next poll
            offsets[path] = start + complete
            texts = chunk[:complete].decode("utf-8", errors="replace").splitlines()
            fresh += _keep(parse(path.stem, texts, start_order=start), model)
        _write(sorted(fresh), out)


def _snapshot(run_dir: Path, model: str | None, lines: int) -> tuple[list[Line], dict[Path, int]]:
    """The last `lines` lines, and where each file's whole lines end (where following resumes)."""
    collected: list[Line] = []
    offsets: dict[Path, int] = {}
    for path in log_files(run_dir):
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            start = max(0, size - TAIL_BYTES)
            handle.seek(start)
            data = handle.read(size - start)
        data = data[: data.rfind(b"\n") + 1]
        offsets[path] = start + len(data)
        if start:
            data = data[data.find(b"\n") + 1:]  # the first line is cut: drop it
        texts = data.decode("utf-8", errors="replace").splitlines()
        collected += _keep(parse(path.stem, texts), model)
    collected.sort()
    return (collected[-lines:] if lines > 0 else []), offsets


def _write(lines: list[Line], out: TextIO) -> None:
    for line in lines:
        out.write(line.render() + "\n")
    out.flush()


def _keep(lines: list[Line], model: str | None) -> list[Line]:
    return lines if model is None else [line for line in lines if about_model(line.source, line.text, model)]
