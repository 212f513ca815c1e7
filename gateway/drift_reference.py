"""The reference distributions model.json keeps for drift (gateway.psi), from the registration sample.

Per input column: for numbers, up to ten quantile bins (inner edges, bin i holding values in
(edge[i-1], edge[i]]) and the sample's share in each; for factors, strings and logicals the share
of each level (a factor's declared levels included, at 0; strings keep their 20 commonest, the
rest share "other"); for every column the share of missing values. Dates are not binned. A
sample under SMALL_SAMPLE rows still gives a reference, with fewer bins and a `note` saying so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from gateway.meta import InputSpec
from gateway.psi import level

MAX_BINS = 10
MAX_LEVELS = 20  # strings: the commonest levels kept; the rest are "other"
SMALL_SAMPLE = 100  # rows under which the reference is rough
_NUMERIC = ("double", "integer")
_CATEGORICAL = ("factor", "string", "logical")


def reference_from_frame(sample: pd.DataFrame, inputs: Iterable[InputSpec]) -> dict[str, Any]:
    """model.json's `reference`: {rows, columns: {name: ...}, note?} for the columns it can bin."""
    rows = len(sample)
    columns: dict[str, Any] = {}
    for spec in inputs:
        if spec.name not in sample.columns or rows == 0:
            continue
        column = sample[spec.name]
        if spec.type in _NUMERIC:
            columns[spec.name] = _numeric(pd.to_numeric(column, errors="coerce"), rows)
        elif spec.type in _CATEGORICAL:
            columns[spec.name] = _categorical(column, rows, spec.levels)
    out: dict[str, Any] = {"rows": rows, "columns": columns}
    if rows < SMALL_SAMPLE:
        out["note"] = (f"the sample has only {rows} rows: the bins are few and drift figures rough; "
                       f"register with {SMALL_SAMPLE}+ rows of training data for a steadier reference")
    return out


def _numeric(values: pd.Series, rows: int) -> dict[str, Any]:
    present = values.dropna()
    bins = max(1, min(MAX_BINS, len(present) // 5))
    quantiles = [i / bins for i in range(1, bins)]
    edges = sorted({float(e) for e in present.quantile(quantiles)}) if len(present) else []
    counts = [0] * (len(edges) + 1)
    for index in pd.cut(present, [-float("inf"), *edges, float("inf")], labels=False, right=True):
        counts[int(index)] += 1
    return {"kind": "numeric", "edges": edges, "shares": [c / rows for c in counts],
            "null_share": (rows - len(present)) / rows}


def _categorical(values: pd.Series, rows: int, declared: tuple[str, ...] | None) -> dict[str, Any]:
    present = values.dropna()
    counts = present.map(level).value_counts()
    kept = counts.head(MAX_LEVELS)
    levels = {str(k): int(v) / rows for k, v in kept.items()}
    for name in declared or ():
        levels.setdefault(name, 0.0)
    return {"kind": "categorical", "levels": levels, "other_share": int(counts.iloc[MAX_LEVELS:].sum()) / rows,
            "null_share": (rows - len(present)) / rows}
