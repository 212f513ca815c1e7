"""`python -m bench then_now`: R rows/s of the working tree against the code at a git ref, side by side.

Issue 18 asks for 3x the rows/s its filing measured for both R backends at 100 and 10 000 rows
per request. Figures from another day on a shared 2-core box mean little, so both codes run
here, at once: the ref is checked out with `git worktree add` into a temporary directory, its own
gatewayr is installed into its own R library (`<tree>/.rlib`, where that code looks for it), and
its stack runs with this venv's Python and PYTHONPATH pointing at that tree (the editable install
of this checkout is found after PYTHONPATH). The working tree gets the same treatment (its own
temporary R library), so neither side reads a stale install. Each side builds the demo R models
with its own code; the same request bodies (varied rows, seeded) go to both. Every cell is
measured for both sides back to back, BENCH_RUNS times interleaved, and the median is kept.

Env: BENCH_THEN_REF (default 39f0334: the code when issue 18 was filed), BENCH_SECONDS (per
measurement, default 4), BENCH_RUNS (default 3), BENCH_THEN_MODELS (default "mtcars,transmission").
Prints the table (rows/s then and now, now/then, met or missed against 3x) with the load average,
and writes bench/results/then_now.csv.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import loadgen
from gateway.paths import REPO_ROOT
from gateway.runtime.plan import free_ports

REF = os.environ.get("BENCH_THEN_REF", "39f0334")
ROWS = (100, 10_000)
CONCURRENCY = (1, 4)
TARGET = 3.0  # issue 18: at least 3x the rows/s at its filing
BACKENDS = ("plumber", "rpy2")
RESULTS = REPO_ROOT / "bench" / "results"


@dataclass(frozen=True)
class Side:
    """One code base: its tree (imported through PYTHONPATH), its R library and its running stack."""

    label: str
    tree: Path
    url: str


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "4"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    models = [m for m in os.environ.get("BENCH_THEN_MODELS", "mtcars,transmission").split(",") if m]
    loadgen.wrk_path()
    print(f"R rows/s: working tree against {REF} ({_describe(REF)}); load average at start {loadavg()}",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as running:
        directory = Path(tmp)
        directory.chmod(0o711)
        then_tree = running.enter_context(worktree(REF, directory / "then"))
        sides = [running.enter_context(side_stack("then", then_tree, directory / "run-then", models)),
                 running.enter_context(side_stack("now", REPO_ROOT, directory / "run-now", models))]
        bodies = {(m, n): payload(m, n) for m in models for n in ROWS}
        check_same_predictions(sides, models, bodies)
        rows = measure_all(sides, models, bodies, seconds, runs)
    print_table(rows, seconds, runs)
    write_csv(rows)


@contextmanager
def worktree(ref: str, path: Path) -> Iterator[Path]:
    """`git worktree add` of `ref` at `path`, with its gatewayr in `path/.rlib`; removed after."""
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", "-q", str(path), ref], check=True)
    try:
        install_gatewayr(path, path / ".rlib")
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(path)], check=False)


def install_gatewayr(tree: Path, library: Path) -> None:
    """What that tree's Makefile did: R CMD INSTALL its r_services into the library it reads."""
    library.mkdir(parents=True, exist_ok=True)
    subprocess.run(["R", "CMD", "INSTALL", "--no-multiarch", "--no-test-load", f"--library={library}",
                    str(tree / "r_services")], check=True, capture_output=True)


def side_env(tree: Path, library: Path) -> dict[str, str]:
    """This venv's Python importing `tree`'s gateway; R finding `tree`'s gatewayr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return {**env, "PYTHONPATH": str(tree), "R_LIBS": str(library), "GATEWAY_R_LIBRARY": str(library)}


@contextmanager
def side_stack(label: str, tree: Path, directory: Path, models: list[str]) -> Iterator[Side]:
    """Build the demo R models with `tree`'s code and run its stack: each model on a Plumber pool
    of 2 and through rpy2 (`<model>_rpy2`), 2 Gunicorn workers x 8 threads, its own defaults."""
    directory.mkdir(parents=True)
    library = tree / ".rlib" if tree != REPO_ROOT else directory / "rlib"
    if tree == REPO_ROOT:
        install_gatewayr(tree, library)
    env = side_env(tree, library)
    store = directory / "store"
    subprocess.run(["Rscript", str(tree / "demo" / "build_r_models.R"), str(store)], env=env, check=True,
                   capture_output=True)
    lines = []
    for model in models:
        shutil.copytree(store / model, store / f"{model}_rpy2")
        lines += [f'[models.{model}]\nbackend = "plumber"\nworkers = 2\n',
                  f'[models.{model}_rpy2]\nbackend = "rpy2"\n']
    (port,) = free_ports(1)
    # The code at the ref has no privilege drop (no server.user); the tree's is off to match.
    user = "" if label == "then" else 'user = ""\n'
    config = directory / "gateway.toml"
    config.write_text(f'[server]\nport = {port}\nworkers = 2\nthreads = 8\nrun_dir = "run"\n{user}'
                      f'[store]\npath = "store"\n' + "".join(lines), encoding="utf-8")
    # Run from the side's own directory: `python -m` puts the working directory first on sys.path.
    gateway = [sys.executable, "-m", "gateway.cli", "--config", str(config)]
    started = subprocess.run([*gateway, "up", "--detach"], env=env, cwd=directory, capture_output=True, text=True,
                             timeout=300)
    try:
        if started.returncode != 0:
            raise RuntimeError(f"{label}: gateway up failed: {started.stderr[-2000:]}")
        yield Side(label, tree, f"http://127.0.0.1:{port}")
    finally:
        subprocess.run([*gateway, "down"], env=env, cwd=directory, capture_output=True, timeout=120, check=False)


def payload(model: str, n_rows: int) -> bytes:
    """`n_rows` records of varied, valid values (seeded, so both sides get the same bytes)."""
    rng = random.Random(n_rows)
    if model == "mtcars":
        rows = [{"wt": round(rng.uniform(1.5, 5.5), 3), "hp": float(rng.randint(50, 330)),
                 "cyl": rng.choice((4, 6, 8)), "am": rng.choice(("auto", "manual"))} for _ in range(n_rows)]
    else:
        rows = [{"mpg": round(rng.uniform(10, 34), 1), "hp": float(rng.randint(50, 330)),
                 "wt": round(rng.uniform(1.5, 5.5), 3), "engine": rng.choice(("V-shaped", "straight"))}
                for _ in range(n_rows)]
    return json.dumps(rows).encode()


def predictions(side: Side, name: str, body: bytes) -> object:
    reply = requests.post(f"{side.url}/models/{name}/predict", data=body, timeout=120,
                          headers={"Content-Type": "application/json"})
    reply.raise_for_status()
    return reply.json()["predictions"]


def check_same_predictions(sides: list[Side], models: list[str], bodies: dict[tuple[str, int], bytes]) -> None:
    """Both codes and both backends answer the same predictions (else the rows/s compare nothing)."""
    for model in models:
        for n_rows in ROWS:
            answers = [predictions(s, f"{model}{suffix}", bodies[(model, n_rows)])
                       for s in sides for suffix in ("", "_rpy2")]
            agree = min(agreement(a, answers[0]) for a in answers[1:])
            if agree < 0.99:
                raise SystemExit(f"{model}, {n_rows} rows: only {agree:.1%} of the predictions agree between "
                                 "then and now, plumber and rpy2")
    print("predictions: the same for then and now, plumber and rpy2 (doubles to 1 ulp; randomForest breaks "
          "tied votes at random)", flush=True)


def agreement(a: object, b: object) -> float:
    """The share of predictions that are the same (see `same`)."""
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a:
        return sum(same(x, y) for x, y in zip(a, b, strict=True)) / len(a)
    return 1.0 if same(a, b) else 0.0


def same(a: object, b: object) -> bool:
    """Equal, doubles to 1 ulp: the JSON reply read some back 1 ulp off (R's strtod judged 15
    digits enough); the binary wire carries R's exact double."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= 2 * math.ulp(max(abs(a), abs(b)))
    return a == b


@dataclass(frozen=True)
class Row:
    model: str
    backend: str
    rows: int
    concurrency: int
    then: float  # rows/s, median of the runs
    now: float
    errors: int

    @property
    def ratio(self) -> float:
        return self.now / self.then if self.then else float("inf")


def measure_all(sides: list[Side], models: list[str], bodies: dict[tuple[str, int], bytes],
                seconds: float, runs: int) -> list[Row]:
    """Every cell for both sides back to back, `runs` times interleaved (the order alternates)."""
    cells = [(m, b, n, c) for m in models for b in BACKENDS for n in ROWS for c in CONCURRENCY]
    rates: dict[tuple[object, ...], list[float]] = {}
    errors: dict[tuple[object, ...], int] = {}
    for run in range(runs):
        print(f"run {run + 1}/{runs}, load average {loadavg()}", flush=True)
        for m, b, n, c in cells:
            order = sides if run % 2 == 0 else sides[::-1]
            for side in order:
                name = m if b == "plumber" else f"{m}_rpy2"
                result = loadgen.run_wrk(f"{side.url}/models/{name}/predict", bodies[(m, n)],
                                         concurrency=c, seconds=seconds)
                key = (side.label, m, b, n, c)
                rates.setdefault(key, []).append(result.rate * n)
                errors[key] = errors.get(key, 0) + result.errors
    return [Row(m, b, n, c, statistics.median(rates[("then", m, b, n, c)]),
                statistics.median(rates[("now", m, b, n, c)]),
                errors[("then", m, b, n, c)] + errors[("now", m, b, n, c)]) for m, b, n, c in cells]


def print_table(rows: list[Row], seconds: float, runs: int) -> None:
    print(f"\nrows/s, median of {runs} interleaved runs of {seconds:g} s; load average at end {loadavg()}")
    print(f"{'model':<13} {'backend':<8} {'rows':>6} {'conc':>4} | {'then':>9} {'now':>9} | "
          f"{'now/then':>8} | {TARGET:g}x")
    for r in rows:
        verdict = "met" if r.ratio >= TARGET else "missed"
        note = f"  ({r.errors} errors)" if r.errors else ""
        print(f"{r.model:<13} {r.backend:<8} {r.rows:>6} {r.concurrency:>4} | {r.then:>9.0f} {r.now:>9.0f} | "
              f"{r.ratio:>7.2f}x | {verdict}{note}")


def write_csv(rows: list[Row]) -> None:
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / "then_now.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["ref", "model", "backend", "rows", "concurrency", "then_rows_s", "now_rows_s", "ratio"])
        for r in rows:
            out.writerow([REF, r.model, r.backend, r.rows, r.concurrency, f"{r.then:.1f}", f"{r.now:.1f}",
                          f"{r.ratio:.3f}"])


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _describe(ref: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO_ROOT), "log", "-1", "--format=%h %cd", "--date=short", ref],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or ref


if __name__ == "__main__":
    main()
