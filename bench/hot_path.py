"""Where a Python predict spends its time, stage by stage, and orjson against the stdlib.

The question (issue: gateway core): does JSON handling dominate the hot path? Each stage of
`PredictionService.predict` is timed in the same process and run, for 1, 100 and 10 000 rows of
iris, and the response encoder is compared with `json.dumps` on the same predictions.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.codecs import decode_request, encode_predict_response, validate_table
from gateway.demo import build_iris
from gateway.registry import build_registry
from gateway.runtime.plan import make_plan
from gateway.settings import settings_from_dict

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
SIZES = (1, 100, 10_000)


def best_of(fn: Callable[[], Any], *, budget_s: float = 0.4) -> float:
    """Median seconds per call over as many calls as fit in the budget (at least 5)."""
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        build_iris(store)
        settings = settings_from_dict(
            {"store": {"path": str(store)}, "models": {"iris": {"backend": "python"}}}, base_dir=Path(tmp)
        )
        backend = build_registry(settings, make_plan(settings)).get("iris").backend()
        print("hot path of one Python predict (median per request; same process, same run)")
        print(f"{'rows':>7} {'decode':>9} {'validate':>9} {'predict':>9} {'encode':>9} "
              f"{'json share':>10} {'stdlib/orjson':>14}")
        for n in SIZES:
            body = json.dumps([ROW] * n).encode()
            decoded = decode_request(body, "application/json")
            table = validate_table(decoded.table, backend.meta.inputs, "iris")
            predictions = backend.predict(table, {"type": "response"})
            t_decode = best_of(lambda b=body: decode_request(b, "application/json"))
            t_validate = best_of(lambda d=decoded: validate_table(d.table, backend.meta.inputs, "iris"))
            t_predict = best_of(lambda t=table: backend.predict(t, {"type": "response"}))
            t_encode = best_of(lambda p=predictions: encode_predict_response("iris", "1", p, "r"))
            t_stdlib = best_of(lambda p=predictions: json.dumps(
                {"model": "iris", "version": "1", "predictions": p, "request_id": "r"}).encode())
            total = t_decode + t_validate + t_predict + t_encode
            share = (t_decode + t_encode) / total
            print(f"{n:>7} {ms(t_decode):>9} {ms(t_validate):>9} {ms(t_predict):>9} {ms(t_encode):>9} "
                  f"{share:>9.1%} {t_stdlib / t_encode:>13.1f}x")


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}ms"


if __name__ == "__main__":
    main()
