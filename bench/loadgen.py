"""Drive one HTTP endpoint with wrk (Debian's `wrk`) for a fixed duration; parse its summary.

wrk is a C event loop: on a 2-core box a Python load generator would eat the CPU the servers
under test need. A Lua script sets the POST body and prints the summary as one JSON line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(extra_headers)s
local f = io.open("%(body_path)s", "rb")
wrk.body = f:read("*a")
f:close()

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors, timeouts and non-2xx/3xx replies

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    return path


def run_wrk(url: str, body: bytes, *, concurrency: int, seconds: float,
            headers: dict[str, str] | None = None) -> Result:
    """POST `body` to `url` from `concurrency` kept-alive connections for `seconds`."""
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(body)
        extra = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items())
        script = Path(tmp) / "post.lua"
        script.write_text(_LUA % {"body_path": body_path, "extra_headers": extra}, encoding="utf-8")
        threads = 1 if concurrency == 1 else 2
        command = [wrk_path(), "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds:g}s",
                   "--timeout", "10s", "-s", str(script), url]
        out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary for {url}: {out.stdout[-500:]} {out.stderr[-500:]}")
    doc = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(doc[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Result(doc["requests"], doc["duration_us"] / 1e6, doc["p50_us"] / 1e3, doc["p99_us"] / 1e3, errors)
