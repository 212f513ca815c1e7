"""A supervisord event listener that counts R worker restarts, for gateway_worker_restarts_total.

supervisord's XML-RPC reports only a process's current pid and start time, so a scrape that
compared them would miss every restart between two scrapes. This listener sees every state
change instead: a `plumber-<model>-<i>` process entering STARTING from EXITED or BACKOFF is a
restart (the first start comes from STOPPED; a `supervisorctl restart` passes through STOPPED
too and is not counted: it is an operator's act, not a crash). Counts are kept per model in a
JSON file in the run dir, written atomically, and survive a restart of this listener.

Run by supervisord as `python -m gateway.runtime.restarts <counts.json>`; it speaks the event
listener protocol on stdin/stdout, so it prints nothing else there.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TextIO

from gateway.runtime.events import serve, tokens

_RESTART_FROM = {"EXITED", "BACKOFF"}
_PREFIX = "plumber-"


def restarted_model(headers: dict[str, str], payload: str) -> str | None:
    """The model whose worker this event restarts, or None for any other event."""
    if headers.get("eventname") != "PROCESS_STATE_STARTING":
        return None
    fields = tokens(payload)
    group = fields.get("groupname", "")
    if not group.startswith(_PREFIX) or fields.get("from_state") not in _RESTART_FROM:
        return None
    # A rollout version's pool (`--v2`) and a pool a reload replaced (`--g1`) count for their model.
    return group.removeprefix(_PREFIX).split("--", 1)[0]


def record(path: Path, model: str) -> None:
    # Imported at the first restart: the listener lives as long as the stack, mostly idle, and
    # gateway.metrics brings prometheus_client (about 8 MB) with it.
    from gateway.metrics import read_restarts

    counts = read_restarts(path)
    counts[model] = counts.get(model, 0) + 1
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(counts, sort_keys=True), encoding="utf-8")
    os.replace(scratch, path)


def listen(path: Path, stdin: TextIO, stdout: TextIO) -> None:
    """The event listener loop: count each restart event, until stdin closes."""

    def handle(headers: dict[str, str], payload: str) -> None:
        model = restarted_model(headers, payload)
        if model is not None:
            record(path, model)

    serve(handle, stdin, stdout)


if __name__ == "__main__":
    listen(Path(sys.argv[1]), sys.stdin, sys.stdout)
