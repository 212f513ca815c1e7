"""Weighted version choice: shares follow the weights, routing keys stick."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from gateway.routing import pick_version

WEIGHTS = [("3", 90), ("4", 10)]


def test_shares_follow_the_weights_within_binomial_tolerance() -> None:
    draws = 20_000
    rng = random.Random(7)
    counts = Counter(pick_version(WEIGHTS, rng=rng) for _ in range(draws))
    expected = draws * 0.10
    sd = math.sqrt(draws * 0.10 * 0.90)
    assert abs(counts["4"] - expected) < 5 * sd
    assert set(counts) == {"3", "4"}


def test_routing_keys_stick_and_still_split_by_weight() -> None:
    keys = [f"user-{i}" for i in range(5000)]
    first = {key: pick_version(WEIGHTS, key) for key in keys}
    assert all(pick_version(WEIGHTS, key) == version for key, version in first.items())
    share = sum(v == "4" for v in first.values()) / len(keys)
    assert abs(share - 0.10) < 5 * math.sqrt(0.1 * 0.9 / len(keys))


def test_a_zero_weight_version_never_answers() -> None:
    assert {pick_version([("1", 0), ("2", 5)], f"k{i}") for i in range(500)} == {"2"}


@pytest.mark.parametrize("weights", [[("1", 1)], [("1", 3), ("2", 3), ("3", 3)]])
def test_every_weighted_version_is_reachable(weights: list[tuple[str, int]]) -> None:
    rng = random.Random(1)
    assert {pick_version(weights, rng=rng) for _ in range(300)} == {v for v, _ in weights}
