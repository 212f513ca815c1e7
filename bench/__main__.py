"""`python -m bench [name ...]`: run the benchmarks (all by default) and print their tables."""

from __future__ import annotations

import sys

from bench import backends, bulk, hot_path, serving, stack_latency, then_now

BENCHMARKS = {
    "hot_path": hot_path.main,
    "stack_latency": stack_latency.main,
    "backends": backends.main,
    "serving": serving.main,
    "bulk": bulk.main,
    "then_now": then_now.main,
}


def main(argv: list[str]) -> None:
    names = argv or list(BENCHMARKS)
    for name in names:
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
        BENCHMARKS[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
