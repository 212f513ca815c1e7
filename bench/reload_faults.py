"""Reloads under load: `gateway reload` (a new model version and a changed nginx.conf) while
three kinds of client predict, and what each of them saw.

`python -m bench.reload_faults [--gap 3] [--concurrency 8] [--reloads 3] [--nginx-only]`
starts a real stack (iris, 2 Gunicorn workers x 4 threads) on free loopback ports and runs, side
by side from `gap` seconds before the first reload to `gap` seconds after the last: `concurrency`
plain `requests.Session` clients, `concurrency` `gateway.client.session()` clients, and one R
process calling `gatewayr::gateway_predict` (httr, so libcurl) in a loop. It prints sent,
failed, re-sent and worst latency per client kind, and how long each reload took.

An NGINX reload closes idle kept-alive connections; a request written on one at that instant is
left unanswered. Clients that re-send it (RFC 9112 §9.3.1: gateway.client, curl, browsers) see
no failure; a plain requests session does, now and then. `--nginx-only` runs `nginx -s reload`
alone instead of a whole `gateway reload`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
import tomllib
from pathlib import Path

from bench.faults import LoadResult, iris_stack, run_load
from gateway import client
from gateway.demo import build_iris
from gateway.paths import REPO_ROOT
from gateway.runtime import stack
from gateway.runtime.render import nginx_command
from gateway.runtime.tomlwrite import dump_toml
from gateway.settings import load_settings

MAX_LOAD_S = 600.0  # the load stops when the reloads are done; this only bounds a stuck run

# One R client: gateway_predict in a closed loop until stop_file exists, then "sent failed worst_s".
R_LOOP = """
args <- commandArgs(trailingOnly = TRUE)
url <- args[[1]]; stop_file <- args[[2]]
row <- data.frame(sepal_length = 5.1, sepal_width = 3.5, petal_length = 1.4, petal_width = 0.2)
sent <- 0; failed <- 0; worst <- 0
while (!file.exists(stop_file)) {
  start <- Sys.time()
  ok <- tryCatch({ gatewayr::gateway_predict(url, "iris", row); TRUE }, error = function(e) FALSE)
  worst <- max(worst, as.numeric(Sys.time() - start, units = "secs"))
  sent <- sent + 1; failed <- failed + !ok
}
cat(sent, failed, worst, "\\n")
"""


def start_r_client(url: str, stop_file: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "R_LIBS": str(REPO_ROOT / ".rlib")}
    return subprocess.Popen(["Rscript", "-e", R_LOOP, url, str(stop_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def r_client_result(process: subprocess.Popen[str]) -> LoadResult:
    out, err = process.communicate(timeout=120)
    if process.returncode != 0:
        raise RuntimeError(f"the R client failed: {err.strip()}")
    sent, failed, worst = out.split()
    return LoadResult(sent=int(sent), failed=int(failed), worst_s=float(worst))


def reload_with_new_version(config: Path, store: Path) -> None:
    """A new iris version lands in the store and nginx.conf changes (the body limit), then reload."""
    build_iris(store)
    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    settings = load_settings(config, env={})
    raw["server"]["body_limit_bytes"] = settings.server.body_limit_bytes + 1024
    config.write_text(dump_toml(raw), encoding="utf-8")
    stack.reload(load_settings(config, env={}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reload_faults")
    parser.add_argument("--gap", type=float, default=3.0, help="seconds of load around each reload")
    parser.add_argument("--concurrency", type=int, default=8, help="clients of each Python kind")
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--nginx-only", action="store_true", help="`nginx -s reload` alone")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, iris_stack(_shared(Path(tmp))) as (url, run_dir):
        config, store = Path(tmp) / "gateway.toml", Path(tmp) / "store"
        plain, resending, stop, stop_file = LoadResult(), LoadResult(), threading.Event(), Path(tmp) / "stop"
        began = time.monotonic()
        threads = [*run_load(url, MAX_LOAD_S, args.concurrency, plain, stop=stop),
                   *run_load(url, MAX_LOAD_S, args.concurrency, resending, session=client.session, stop=stop)]
        r_client = start_r_client(url, stop_file)
        took: list[float] = []
        try:
            for _ in range(args.reloads):
                time.sleep(args.gap)
                start = time.monotonic()
                if args.nginx_only:
                    subprocess.run([*nginx_command(run_dir), "-s", "reload"], check=True)
                else:
                    reload_with_new_version(config, store)
                took.append(time.monotonic() - start)
            time.sleep(args.gap)
        finally:
            stop.set()
            stop_file.touch()
        for thread in threads:
            thread.join()
        from_r = r_client_result(r_client)
        seconds = time.monotonic() - began
    what = "nginx -s reload" if args.nginx_only else "gateway reload (new version + nginx.conf change)"
    print(f"{args.reloads} x {what} under {seconds:.0f} s of load; reloads took "
          f"{', '.join(f'{t:.1f}' for t in took)} s")
    print(f"{'client':<40} {'conc':>4} {'sent':>6} {'failed':>6} {'re-sent':>7} {'worst ms':>8}")
    rows = [("requests.Session (plain)", args.concurrency, plain),
            ("gateway.client.session()", args.concurrency, resending),
            ("R gatewayr::gateway_predict (libcurl)", 1, from_r)]
    for name, conc, result in rows:
        resent = str(result.resent) if result is resending else "-"
        print(f"{name:<40} {conc:>4} {result.sent:>6} {result.failed:>6} {resent:>7} {result.worst_s * 1000:>8.0f}")


def _shared(directory: Path) -> Path:
    directory.chmod(0o711)  # a root-run stack drops to the service users: they must cross it
    return directory


if __name__ == "__main__":
    main()
