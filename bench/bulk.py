"""Bulk bodies against the JSON body: rows/s of one 10 000-row request through the whole stack
in each form (JSON, NDJSON, CSV, Arrow), for a Python model and an R pool, side by side.

The streamed forms are read, validated and scored chunk by chunk in bounded memory; the question
is what that costs (or saves) against the JSON body at a size both can take. Each form answers
in its own form (JSON, NDJSON, CSV, Arrow). Bodies are built once; requests go one at a time.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import requests

from bench.closed_loop import running_stack
from gateway.demo import build_iris
from gateway.paths import REPO_ROOT
from gateway.rscript import run_rscript

ROWS = 10_000
REQUESTS = 10  # per form and model, after one warm-up
ARROW = "application/vnd.apache.arrow.stream"


def iris_row(i: int) -> dict[str, Any]:
    return {"sepal_length": 4.0 + (i % 40) / 10, "sepal_width": 3.0 + (i % 7) / 10,
            "petal_length": 1.0 + (i % 50) / 10, "petal_width": 0.1 + (i % 23) / 10}


def mtcars_row(i: int) -> dict[str, Any]:
    return {"wt": 1.5 + (i % 30) / 10, "hp": 60 + i % 200, "cyl": (4, 6, 8)[i % 3], "am": ("auto", "manual")[i % 2]}


def bodies(records: list[dict[str, Any]]) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Form → (body, headers): each form asks for its own form back."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pylist(records)
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    return {
        "JSON": (json.dumps(records).encode(), {"Content-Type": "application/json"}),
        "NDJSON": (b"".join(json.dumps(r).encode() + b"\n" for r in records),
                   {"Content-Type": "application/x-ndjson"}),
        "CSV": (text.getvalue().encode(), {"Content-Type": "text/csv", "Accept": "text/csv"}),
        "Arrow": (sink.getvalue().to_pybytes(), {"Content-Type": ARROW, "Accept": ARROW}),
    }


def rows_per_s(url: str, model: str, body: bytes, headers: dict[str, str]) -> float:
    with requests.Session() as session:
        session.trust_env = False
        endpoint = f"{url}/models/{model}/predict"
        session.post(endpoint, data=body, headers=headers, timeout=120).raise_for_status()  # warm up
        started = time.perf_counter()
        for _ in range(REQUESTS):
            reply = session.post(endpoint, data=body, headers=headers, timeout=120)
            reply.raise_for_status()
        return ROWS * REQUESTS / (time.perf_counter() - started)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o711)  # a root-run stack drops to the service users: they must cross it
        build_iris(directory / "store")
        run_rscript([str(REPO_ROOT / "demo" / "build_r_models.R"), str(directory / "store")])
        # One backend call per request in every form: the chunk is the whole body.
        models = (f'[models.iris]\nbackend = "python"\nbatch = {{ max_size = {ROWS} }}\n'
                  f'[models.mtcars]\nbackend = "plumber"\nworkers = 2\nbatch = {{ max_size = {ROWS} }}\n')
        with running_stack(directory, models) as url:
            run(url)


def run(url: str) -> None:
    forms = {"iris": bodies([iris_row(i) for i in range(ROWS)]),
             "mtcars": bodies([mtcars_row(i) for i in range(ROWS)])}
    print(f"{ROWS} rows per request through NGINX → Gunicorn; rows/s over {REQUESTS} requests, one at a time; "
          "ratio: over the JSON body")
    print(f"{'form':<7} {'body KB':>8} | {'iris rows/s':>12} {'ratio':>6} | {'mtcars (R) rows/s':>18} {'ratio':>6}")
    base: dict[str, float] = {}
    for form in ("JSON", "NDJSON", "CSV", "Arrow"):
        line = f"{form:<7} {len(forms['iris'][form][0]) / 1024:>8.0f}"
        for model in ("iris", "mtcars"):
            body, headers = forms[model][form]
            rate = rows_per_s(url, model, body, headers)
            base.setdefault(model, rate)
            width = 12 if model == "iris" else 18
            line += f" | {rate:>{width},.0f} {rate / base[model]:>5.2f}x"
        print(line)


if __name__ == "__main__":
    main()
