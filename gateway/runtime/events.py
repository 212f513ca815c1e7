"""supervisord's event listener protocol, for the listeners under gateway/runtime/."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO


def serve(handle: Callable[[dict[str, str], str], None], stdin: TextIO, stdout: TextIO) -> None:
    """READY, read one event (header line and payload), handle it, OK; until stdin closes."""
    while True:
        stdout.write("READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return
        headers = tokens(line)
        payload = stdin.read(int(headers.get("len", "0")))
        handle(headers, payload)
        stdout.write("RESULT 2\nOK")
        stdout.flush()


def tokens(text: str) -> dict[str, str]:
    """`key:value key:value` (the header line, and the first line of a process event's payload)."""
    first = text.split("\n", 1)[0]
    return dict(token.split(":", 1) for token in first.split() if ":" in token)
