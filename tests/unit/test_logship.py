"""The logship listener: supervisord's log events in, one JSON object per output line out."""

from __future__ import annotations

import io
import json

from gateway.runtime.logship import Shipper, serve


def event(name: str, program: str, data: str) -> bytes:
    payload = f"processname:{program} groupname:{program} pid:7 channel:x\n{data}".encode()
    header = f"ver:3.0 server:s serial:1 pool:logship poolserial:1 eventname:{name} len:{len(payload)}\n"
    return header.encode() + payload


def shipped(*events: bytes) -> list[dict]:
    out = io.StringIO()
    serve(Shipper(out), io.BytesIO(b"".join(events)), io.BytesIO())
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_lines_are_split_joined_across_events_and_json_lines_keep_their_fields() -> None:
    entries = shipped(
        event("PROCESS_LOG_STDERR", "gunicorn", "[INFO] Booting wörker 1\n[INFO] half"),  # UTF-8: len counts bytes
        event("PROCESS_LOG_STDOUT", "nginx", '{"source":"nginx","status":200}\n'),
        event("PROCESS_LOG_STDERR", "gunicorn", " a line\n"),
        event("PROCESS_STATE_RUNNING", "nginx", ""),
    )
    assert [(e["source"], e.get("message")) for e in entries] == [
        ("gunicorn", "[INFO] Booting wörker 1"), ("nginx", None), ("gunicorn", "[INFO] half a line"),
        ("supervisord", None)]
    assert entries[0]["stream"] == "stderr" and entries[0]["program"] == "gunicorn"
    assert entries[1] == {"source": "nginx", "status": 200, "program": "nginx"}
    assert entries[3]["state"] == "RUNNING" and entries[3]["process"] == "nginx"
