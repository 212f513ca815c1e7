"""Population stability index: how far a window of live values has moved from the reference.

A reference column (model.json `reference.columns.<name>`, written at registration by
gateway.drift_reference) fixes the bins: quantile bin edges for numbers, levels for factors,
strings and logicals, and always a bin for missing values. Live values are put in the same
bins; PSI = sum((a - e) * ln(a / e)) over the bins, with empty bins floored at EPSILON so one
unseen bin gives a large but finite figure. Rule of thumb: < 0.1 stable, 0.1-0.25 moved,
> 0.25 shifted (docs/observability.md).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

EPSILON = 1e-4  # the share an empty bin counts as (ln 0 is not a number)
NULL = "null"  # label of the missing-value bin
OTHER = "other"  # label of the bin for levels the reference never saw


class Binner:
    """Puts one column's values into the reference's bins; `expected` holds their shares, in
    the order of `labels` (numeric bins "0".."k", or the levels then "other"; "null" last)."""

    def __init__(self, reference: dict[str, Any]) -> None:
        self.numeric = reference.get("kind") == "numeric"
        self.edges: list[float] = []
        self.levels: dict[str, int] = {}
        if self.numeric:
            self.edges = [float(e) for e in reference.get("edges") or []]
            self.labels = [str(i) for i in range(len(self.edges) + 1)]
            shares = [float(s) for s in reference.get("shares") or []]
            if len(shares) != len(self.labels):
                raise ValueError(f"{len(shares)} shares for {len(self.labels)} bins")
        else:
            levels = reference.get("levels") or {}
            self.levels = {str(k): i for i, k in enumerate(levels)}
            self.labels = [*map(str, levels), OTHER]
            shares = [*(float(v) for v in levels.values()), float(reference.get("other_share", 0.0))]
        self.labels.append(NULL)
        self.expected = [*shares, float(reference.get("null_share", 0.0))]

    def index(self, value: Any) -> int:
        """The bin of one live value (the last bin is the missing one)."""
        missing = len(self.labels) - 1
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return missing
        if self.numeric:
            try:
                number = float(value)
            except (TypeError, ValueError):
                return missing  # not a number: counted as missing
            return missing if math.isnan(number) else bisect.bisect_left(self.edges, number)
        return self.levels.get(level(value), missing - 1)


def level(value: Any) -> str:
    """A categorical value as the reference spells it: logicals as true/false, the rest as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def psi(expected: Sequence[float], counts: Sequence[float]) -> float | None:
    """PSI of live bin counts against expected shares; None without any live value."""
    total = sum(counts)
    if total <= 0 or len(expected) != len(counts):
        return None
    out = 0.0
    for share, count in zip(expected, counts, strict=True):
        e, a = max(share, EPSILON), max(count / total, EPSILON)
        out += (a - e) * math.log(a / e)
    return out
