"""Side-by-side serving benchmark: the gateway against what Python and R users run by hand.

One run, one machine, the same fitted models and payloads (1-row and 100-row requests,
concurrency 1, 8 and 32, wrk as the load generator). Every system is up at once; each cell
measures all of them back to back, three times interleaved, and keeps the median, so a machine
that slows down mid-run moves them alike:

  gw-py-on / gw-py-off      the gateway, Python model (iris, in-process), batching on / off
  gw-r-on / gw-r-off        the gateway, R model (mtcars) on a Plumber pool of 2, batching on / off
  gw-rpy2-on / gw-rpy2-off  the gateway, the same R model in-process through rpy2
  pool-keepalive / pool-close  2 plain Plumber processes behind NGINX, with and without upstream
                            keep-alive (bench/peers.py): the R baseline is the better of the two
  plumber-one / plumber-one-close  one plain Plumber process, kept alive / `Connection: close`
  flask-gunicorn            hand-written Flask + Gunicorn on the same estimator, same worker count
  mlflow-serve              `mlflow models serve` on the same estimator, same worker count
  nginx-static              NGINX answering a fixed JSON body (this box's HTTP ceiling)

Prints the table, every tracked ratio as met / missed, cold start of the demo stack and the PSS
of each system, and writes bench/results/serving.csv, serving.png and machine.json.
Env: BENCH_SECONDS (per measurement, default 2), BENCH_RUNS (interleaved runs per cell, default 3).
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench import loadgen, peers, targets
from gateway.demo import build_demo_store
from gateway.paths import REPO_ROOT
from gateway.runtime import stack
from gateway.runtime.plan import free_ports
from gateway.runtime.tomlwrite import dump_toml
from gateway.settings import load_settings
from gateway.store import ModelStore

RESULTS = REPO_ROOT / "bench" / "results"
ROWS = (1, 100)
CONCURRENCY = (1, 8, 32)
IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
MTCARS_ROW = {"wt": 2.62, "hp": 110.0, "cyl": 6, "am": "manual"}
R_POOL = ("pool-keepalive", "pool-close")  # the R baseline: the better of these in each cell
R_ONE = ("plumber-one", "plumber-one-close")
BASE_PY, MLFLOW = "flask-gunicorn", "mlflow-serve"
THREADS = 32  # per Gunicorn worker of the gateway (targets.py says why)
FLASK_THREADS = 4  # hand-written Flask: gthread; more threads only add GIL contention there


@dataclass(frozen=True)
class Cell:
    target: str
    rows: int
    concurrency: int
    result: loadgen.Result

    @property
    def rows_rate(self) -> float:
        return self.result.rate * self.rows


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "2"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    loadgen.wrk_path()
    machine = describe_machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()), flush=True)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as running:
        directory = Path(tmp)
        directory.chmod(0o711)  # a root-run stack drops to the service users: they must cross it
        cold = cold_starts(directory / "cold", runs)
        store = directory / "cold" / "store"  # the demo store the cold starts built
        shutil.copytree(store / "mtcars", store / "mtcars_rpy2")
        meta = ModelStore(store)
        iris_dir = meta.version_dir("iris", meta.resolve("iris", "latest"))
        mtcars_dir = meta.version_dir("mtcars", meta.resolve("mtcars", "latest"))
        bodies = payloads()
        endpoints: list[Endpoint] = []
        pids: dict[str, list[int]] = {}
        url = running.enter_context(targets.static_nginx(directory / "static"))
        endpoints.append(Endpoint("nginx-static", url, bodies["iris"]))
        pool = running.enter_context(peers.plumber_pool(directory / "pool", mtcars_dir / "model.rds", workers=2))
        endpoints += [Endpoint(R_POOL[0], pool.keepalive_url, bodies["mtcars"]),
                      Endpoint(R_POOL[1], pool.close_url, bodies["mtcars"])]
        pids["bare pool of 2 + NGINX"] = pool.pids
        direct = running.enter_context(peers.plumber_one(directory / "direct", mtcars_dir / "model.rds"))
        endpoints += [Endpoint(R_ONE[0], direct.url, bodies["mtcars"]),
                      Endpoint(R_ONE[1], direct.url, bodies["mtcars"], {"Connection": "close"})]
        pids["one Plumber process"] = [direct.pid]
        flask_url, flask_pid = running.enter_context(
            peers.flask_gunicorn(directory / "flask", iris_dir / "model.skops",
                                 targets.GUNICORN_WORKERS, FLASK_THREADS))
        endpoints.append(Endpoint(BASE_PY, flask_url, bodies["iris"]))
        pids["Flask + Gunicorn by hand"] = [flask_pid]
        mlflow = running.enter_context(targets.mlflow_serve(directory, iris_dir / "model.skops"))
        if mlflow is None:
            print(f"  {MLFLOW}: not measured ({targets.MLFLOW_VENV} missing: mlflow did not install)")
        else:
            endpoints.append(Endpoint(MLFLOW, mlflow, bodies["mlflow"]))
        gunicorn_on = ""
        for batching in (False, True):
            state = "on" if batching else "off"
            run_dir = directory / f"gw-{state}"
            public, _internal, gunicorn = running.enter_context(
                targets.gateway_stack(run_dir, store, batching=batching, threads=THREADS, rpy2=True))
            endpoints += [Endpoint(f"gw-py-{state}", public + "/models/iris/predict", bodies["iris"]),
                          Endpoint(f"gw-r-{state}", public + "/models/mtcars/predict", bodies["mtcars"]),
                          Endpoint(f"gw-rpy2-{state}", public + "/models/mtcars_rpy2/predict", bodies["mtcars"])]
            supervisord = stack._supervisord_pid(run_dir / "run")
            pids[f"gateway (batching {state}; iris, mtcars, mtcars_rpy2)"] = [supervisord] if supervisord else []
            if batching:
                gunicorn_on = gunicorn
        cells = measure_all(endpoints, seconds, runs)
        memory = {name: peers.pss_mb(group) for name, group in pids.items()}
        counters = targets.batching_counters(gunicorn_on)
    print()
    print_table(cells, seconds, runs, machine)
    print_counters(counters)
    print_targets(cells, cold)
    print_memory(memory)
    write_results(cells, machine, counters, cold, memory)


def measure_all(endpoints: list[Endpoint], seconds: float, runs: int) -> list[Cell]:
    """Each cell: every endpoint back to back, `runs` times interleaved; the median run is kept."""
    cells = []
    for rows in ROWS:
        for endpoint in endpoints:  # warm connections and caches
            loadgen.run_wrk(endpoint.url, endpoint.body(rows), concurrency=8, seconds=1, headers=endpoint.headers)
        for concurrency in CONCURRENCY:
            results: dict[str, list[loadgen.Result]] = {e.name: [] for e in endpoints}
            for _ in range(runs):
                for endpoint in endpoints:
                    results[endpoint.name].append(loadgen.run_wrk(
                        endpoint.url, endpoint.body(rows), concurrency=concurrency, seconds=seconds,
                        headers=endpoint.headers))
            for name, measured in results.items():
                result = median_result(measured)
                cells.append(Cell(name, rows, concurrency, result))
                print(f"  {name:<20} rows={rows:<4} conc={concurrency:<3} {result.rate:9.1f} req/s "
                      f"p50 {result.p50_ms:7.2f} ms p99 {result.p99_ms:7.2f} ms errors {result.errors} "
                      f"(runs: {', '.join(f'{r.rate:.0f}' for r in measured)})", flush=True)
    return cells


def median_result(results: list[loadgen.Result]) -> loadgen.Result:
    """The run with the median rate, with the median p50 and p99 of all runs and every error."""
    middle = sorted(results, key=lambda r: r.rate)[len(results) // 2]
    return loadgen.Result(middle.requests, middle.seconds, statistics.median(r.p50_ms for r in results),
                          statistics.median(r.p99_ms for r in results), sum(r.errors for r in results))


def cold_starts(directory: Path, runs: int) -> list[float]:
    """Seconds from `gateway up` to `/readyz` 200 for the demo stack (warm disk), `runs` times."""
    directory.mkdir(parents=True, exist_ok=True)
    demo = load_settings(REPO_ROOT / "gateway.toml", env={})
    seconds = []
    for attempt in range(runs + 1):  # the first start warms the disk cache and is not counted
        (port,) = free_ports(1)
        raw = {"server": {"port": port, "run_dir": str(directory / "run")},
               "store": {"path": str(directory / "store")},
               "models": {m.name: _model_table(m) for m in demo.models.values()}}
        config = directory / "gateway.toml"
        config.write_text(dump_toml(raw), encoding="utf-8")
        settings = load_settings(config, env={})
        if attempt == 0:
            build_demo_store(settings)
        started = time.monotonic()
        stack.up(settings, wait_s=120)
        elapsed = time.monotonic() - started
        stack.down(settings.run_dir)
        if attempt:
            seconds.append(elapsed)
    print(f"cold start of the demo stack, `up` to /readyz 200: {', '.join(f'{s:.2f}' for s in seconds)} s",
          flush=True)
    return seconds


def _model_table(model: object) -> dict[str, object]:
    """A model's config table as the demo file has it (only the keys the demo sets)."""
    keys = ("backend", "version", "workers", "timeout_s", "predict_route", "input_format", "description")
    table = {k: getattr(model, k) for k in keys}
    return {k: v for k, v in table.items() if v is not None}


@dataclass(frozen=True)
class Endpoint:
    """One target's URL and request body for n rows (and any extra headers)."""

    name: str
    url: str
    body: Callable[[int], bytes]
    headers: dict[str, str] | None = None


def payloads() -> dict[str, Callable[[int], bytes]]:
    """Request bodies per protocol, for n rows: the same rows in every protocol."""
    return {
        "iris": lambda n: orjson.dumps([IRIS_ROW] * n),
        "mtcars": lambda n: orjson.dumps([MTCARS_ROW] * n),
        "mlflow": lambda n: orjson.dumps({"dataframe_records": [IRIS_ROW] * n}),
    }


def baselines(cells: list[Cell]) -> dict[tuple[int, int], dict[str, loadgen.Result]]:
    """Per (rows, concurrency): the R baseline (the better pool configuration), the Python one."""
    by = {(c.target, c.rows, c.concurrency): c.result for c in cells}
    out: dict[tuple[int, int], dict[str, loadgen.Result]] = {}
    for rows in ROWS:
        for conc in CONCURRENCY:
            pools = [by[(name, rows, conc)] for name in R_POOL if (name, rows, conc) in by]
            out[(rows, conc)] = {}
            if pools:
                out[(rows, conc)]["r"] = max(pools, key=lambda r: r.rate)
            if (BASE_PY, rows, conc) in by:
                out[(rows, conc)]["py"] = by[(BASE_PY, rows, conc)]
    return out


def ratios(cells: list[Cell]) -> dict[tuple[str, int, int], tuple[float | None, float | None]]:
    """Each cell's rate over the bare R pool's best and over hand-written Flask, same cell."""
    base = baselines(cells)
    out = {}
    for c in cells:
        b = base.get((c.rows, c.concurrency), {})
        r, py = b.get("r"), b.get("py")
        out[(c.target, c.rows, c.concurrency)] = (c.result.rate / r.rate if r and r.rate else None,
                                                  c.result.rate / py.rate if py and py.rate else None)
    return out


def print_table(cells: list[Cell], seconds: float, runs: int, machine: dict[str, str]) -> None:
    print(f"serving benchmark: wrk, median of {runs} interleaved runs of {seconds:g} s per cell, "
          f"{machine['cores']} cores ({machine['cpu']}), load average at start {machine['loadavg']}, "
          f"at end {_loadavg()}")
    print(f"{'target':<20} {'rows':>4} {'conc':>4} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6} {'vs R pool':>9} {'vs Flask':>9}")
    print("(vs R pool: against the better of pool-keepalive and pool-close in that cell; "
          "vs Flask: against flask-gunicorn)")
    ratio = ratios(cells)
    for c in sorted(cells, key=lambda c: (c.rows, c.concurrency)):
        vs_r, vs_py = ratio[(c.target, c.rows, c.concurrency)]
        print(f"{c.target:<20} {c.rows:>4} {c.concurrency:>4} {c.result.rate:>9.1f} {c.rows_rate:>10.0f} "
              f"{c.result.p50_ms:>8.2f} {c.result.p99_ms:>8.2f} {c.result.errors:>6} "
              f"{_x(vs_r):>9} {_x(vs_py):>9}")


def print_counters(counters: dict[int, list[dict[str, object]]]) -> None:
    print("\nbatching counters, batching-on stack, per Gunicorn worker (since start, warm-up included):")
    for pid, batchers in sorted(counters.items()):
        for b in batchers:
            print(f"  pid {pid} {b['model']:<12} calls {b['calls']:>7} requests {b['requests']:>7} "
                  f"rows/call {b['mean_rows_per_call']:6.1f} requests/call {b['mean_requests_per_call']:5.1f} "
                  f"wait mean {b['wait_mean_ms']:.2f} ms max {b['wait_max_ms']:.1f} ms "
                  f"overflow calls {b['overflow_calls']} solo retries {b['solo_retries']}")


def tracked(cells: list[Cell], cold: list[float]) -> list[tuple[str, str, bool]]:
    """Every ratio the project tracks (docs/benchmarks.md): (what, measured, met)."""
    by = {(c.target, c.rows, c.concurrency): c.result for c in cells}
    base = baselines(cells)
    out: list[tuple[str, str, bool]] = []
    for conc, floor in ((8, 1.0), (32, 1.3)):
        gw, pool = by.get(("gw-r-on", 1, conc)), base[(1, conc)].get("r")
        if gw and pool:
            out.append((f"R plumber backend, 1 row, {conc} conns / bare pool >= {floor}x",
                        f"{gw.rate / pool.rate:.2f}x", gw.rate / pool.rate >= floor))
    gw, pool = by.get(("gw-r-on", 1, 1)), base[(1, 1)].get("r")
    pools_p50 = [by[(n, 1, 1)].p50_ms for n in R_POOL if (n, 1, 1) in by]
    if gw and pool and pools_p50:
        extra = gw.p50_ms - min(pools_p50)
        out.append(("R plumber backend, 1 row, 1 conn: p50 over the bare pool's <= 1 ms", f"{extra:+.2f} ms",
                    extra <= 1.0))
    for conc in CONCURRENCY:
        gw, flask = by.get(("gw-py-on", 1, conc)), base[(1, conc)].get("py")
        if gw and flask:
            out.append((f"Python, 1 row, {conc} conns / hand-written Flask >= 1.0x", f"{gw.rate / flask.rate:.2f}x",
                        gw.rate >= flask.rate))
    for backend in ("py", "r", "rpy2"):
        for rows in ROWS:
            for conc in CONCURRENCY:
                on, off = by.get((f"gw-{backend}-on", rows, conc)), by.get((f"gw-{backend}-off", rows, conc))
                if on and off:
                    # Noise: on a shared 2-core box, interleaved runs of one cell differ by ~5 %.
                    out.append((f"batching on / off, {backend}, {rows} rows, {conc} conns >= 0.95x",
                                f"{on.rate / off.rate:.2f}x", on.rate >= 0.95 * off.rate))
    if cold:
        median = statistics.median(cold)
        out.append(("cold start of the demo stack, `up` to /readyz 200, < 2 s", f"{median:.2f} s", median < 2.0))
    return out


def print_targets(cells: list[Cell], cold: list[float]) -> None:
    print("\ntracked ratios:")
    for what, measured, met in tracked(cells, cold):
        print(f"  {what:<72} {measured:>9}  {'met' if met else 'MISSED'}")


def print_memory(memory: dict[str, float]) -> None:
    print("\nmemory (PSS of each system's whole process tree, after the run):")
    for name, mb in memory.items():
        print(f"  {name:<56} {mb:8.1f} MiB")


def write_results(cells: list[Cell], machine: dict[str, str], counters: dict[int, list[dict[str, object]]],
                  cold: list[float], memory: dict[str, float]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    ratio = ratios(cells)
    with open(RESULTS / "serving.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target", "rows", "concurrency", "seconds", "requests", "req_s", "rows_s", "p50_ms",
                         "p99_ms", "errors", "vs_r_pool", "vs_flask"])
        for c in cells:
            vs_r, vs_py = ratio[(c.target, c.rows, c.concurrency)]
            writer.writerow([c.target, c.rows, c.concurrency, f"{c.result.seconds:.2f}", c.result.requests,
                             f"{c.result.rate:.1f}", f"{c.rows_rate:.0f}", f"{c.result.p50_ms:.3f}",
                             f"{c.result.p99_ms:.3f}", c.result.errors, _num(vs_r), _num(vs_py)])
    doc = {**machine, "loadavg_end": _loadavg(), "cold_start_s": cold, "pss_mib": memory,
           "tracked": [{"what": w, "measured": m, "met": ok} for w, m, ok in tracked(cells, cold)],
           "batching_counters": {str(k): v for k, v in counters.items()}}
    (RESULTS / "machine.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    chart(cells, RESULTS / "serving.png")
    print(f"\nwrote {RESULTS / 'serving.csv'}, {RESULTS / 'serving.png'}, {RESULTS / 'machine.json'}")


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def chart(cells: list[Cell], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(c.target for c in cells))
    by = {(c.target, c.rows, c.concurrency): c.result.rate for c in cells}
    figure, axes = plt.subplots(1, len(ROWS), figsize=(14, 5), sharey=True)
    width = 0.8 / len(names)
    for axis, rows in zip(axes, ROWS, strict=True):
        for i, name in enumerate(names):
            xs = [k + i * width for k in range(len(CONCURRENCY))]
            axis.bar(xs, [by.get((name, rows, c), 0.0) for c in CONCURRENCY], width, label=name)
        axis.set_xticks([k + 0.4 - width / 2 for k in range(len(CONCURRENCY))], [f"conc {c}" for c in CONCURRENCY])
        axis.set_yscale("log")
        axis.set_title(f"{rows}-row requests")
        axis.set_ylabel("requests/s (log)")
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def describe_machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())

    def first_line(command: list[str], env: dict[str, str] | None = None) -> str:
        try:
            out = subprocess.run(command, capture_output=True, text=True, check=False, env=env, timeout=60)
        except OSError:
            return "not found"
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else "?"

    import sklearn

    mlflow_python = targets.MLFLOW_VENV / "bin" / "python"
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "os": first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "R": first_line(["R", "--version"]),
        "plumber": first_line(["Rscript", "-e", "cat(as.character(packageVersion('plumber')))"], targets.R_ENV),
        "nginx": first_line(["nginx", "-v"]),
        "wrk": first_line(["wrk", "-v"]),
        "mlflow": first_line([str(mlflow_python), "-c", "import mlflow; print(mlflow.__version__)"])
        if mlflow_python.exists() else "not installed",
    }


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
