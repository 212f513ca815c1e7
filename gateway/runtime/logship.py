"""`server.log_target = "stdout"`: every program's log lines as JSON lines on the container's stdout.

A supervisord event listener: programs send their output as PROCESS_LOG events (their log
files are off), and this listener writes one JSON object per line to its stderr, which
supervisord passes to its own stdout (`stderr_logfile=/dev/stdout`), so `kubectl logs` shows
them. A line that is already a JSON object (NGINX's access log, the app's request lines, the
prober) keeps its fields and gains `program`; any other line becomes {"time", "source": the
program, "stream", "message"}. Process state changes are lines with source "supervisord".

Run by supervisord as `python -m gateway.runtime.logship`. The protocol is read as bytes: an
event's `len` counts bytes, and a log line may hold any UTF-8.
"""

from __future__ import annotations

import json
import sys
import time
from typing import BinaryIO, TextIO

from gateway.runtime.events import tokens

_MAX_PARTIAL = 64 * 1024  # a line longer than this is written in pieces rather than held


class Shipper:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.partial: dict[tuple[str, str], str] = {}  # (program, stream) → an unfinished line

    def handle(self, headers: dict[str, str], payload: str) -> None:
        event = headers.get("eventname", "")
        head, _, data = payload.partition("\n")
        fields = tokens(head)
        program = fields.get("processname", "?")
        if event.startswith("PROCESS_LOG_"):
            self.lines(program, "stdout" if event.endswith("STDOUT") else "stderr", data)
        elif event.startswith("PROCESS_STATE_"):
            self.write({"time": _now(), "source": "supervisord", "program": "supervisord", "process": program,
                        "state": event.removeprefix("PROCESS_STATE_"), "pid": fields.get("pid"),
                        "from_state": fields.get("from_state")})

    def lines(self, program: str, stream: str, data: str) -> None:
        key = (program, stream)
        text = self.partial.pop(key, "") + data
        *complete, rest = text.split("\n")
        if len(rest) > _MAX_PARTIAL:
            complete.append(rest)
            rest = ""
        if rest:
            self.partial[key] = rest
        for line in complete:
            if line.strip():
                self.write(entry(program, stream, line.rstrip("\r")))

    def write(self, doc: dict[str, object]) -> None:
        self.out.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.out.flush()


def entry(program: str, stream: str, line: str) -> dict[str, object]:
    """One output line as a JSON object with a `source`."""
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            return {**doc, "source": doc.get("source") or program, "program": program}
    return {"time": _now(), "source": program, "program": program, "stream": stream, "message": line}


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def serve(shipper: Shipper, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """supervisord's listener protocol (gateway/runtime/events.py), on bytes."""
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return
        headers = tokens(line.decode("utf-8", "replace"))
        payload = stdin.read(int(headers.get("len", "0")))
        shipper.handle(headers, payload.decode("utf-8", "replace"))
        stdout.write(b"RESULT 2\nOK")
        stdout.flush()


if __name__ == "__main__":
    serve(Shipper(sys.stderr), sys.stdin.buffer, sys.stdout.buffer)
