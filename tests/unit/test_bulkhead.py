"""Per-model bulkheads (gateway/bulkhead.py) and the clipping of echoed values (gateway/errors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.bulkhead import Bulkheads
from gateway.errors import Busy, NotFound, clip
from gateway.settings import settings_from_dict


def test_past_max_in_flight_a_model_is_busy_and_others_are_not() -> None:
    heads = Bulkheads({"slow": 2, "iris": 0})
    with heads.enter("slow"), heads.enter("slow"):
        with (pytest.raises(Busy, match=r"'slow' already has 2 requests in flight.*models.slow.max_in_flight") as busy,
              heads.enter("slow")):
            pass
        assert busy.value.status == 503 and busy.value.retry_after_s == 1
        for _ in range(5):
            with heads.enter("iris"), heads.enter("unknown"):  # no cap, and names it never saw
                pass
    with heads.enter("slow"), heads.enter("slow"):  # slots come back, errors or not
        pass


def test_max_in_flight_is_validated(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="max_in_flight must be >= 0"):
        settings_from_dict({"models": {"m": {"max_in_flight": -1}}}, base_dir=tmp_path)


def test_long_values_in_a_detail_are_clipped_with_their_length() -> None:
    assert clip("abc") == "abc"
    assert clip("x" * 500) == "x" * 200 + "... (500 characters)"
    error = NotFound(f"column {'c' * 5000} is unknown; known: a, b", model="m" * 300)
    assert error.detail == f"column {'c' * 200}... (5000 characters) is unknown; known: a, b"
    assert error.model == "m" * 200 + "... (300 characters)"
    assert len(NotFound(" ".join(["word"] * 2000)).detail) < 2100  # many short values: the whole is capped
