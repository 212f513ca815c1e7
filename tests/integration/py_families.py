"""Fitted scikit-learn estimators of the families users bring, registered with register_model.

Each family is (estimator, sample frame, targets); `build_families` registers them all in a store
and returns the fitted estimators, so a test can compare the gateway with local predict. The
ensembles hold types skops does not trust by default: until the store records them, they are
served with `trusted = true` (FAMILY_MODELS), the mechanism the gateway has today.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor, IsolationForest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline

from gateway.register import register_model

FAMILY_MODELS = {name: {"backend": "python", "trusted": True}
                 for name in ("gboost", "histgb", "outliers", "two_targets", "two_anon", "texts", "stamped")}
# the datetime column is dropped by the model: what is checked is that the gateway reads it
STAMPED_COLUMNS = ("x", "when")


def _numbers(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.uniform(0, 10, size=n)})


def families() -> dict[str, tuple[Any, pd.DataFrame, list[str] | None]]:
    frame = _numbers()
    label = np.where(frame["a"] + frame["b"] > 0, "up", "down")
    gaps = frame.copy()
    gaps.loc[::7, "a"] = np.nan  # HistGradientBoosting learns where missing values go
    gaps.loc[::11, "c"] = np.nan
    targets = pd.DataFrame({"spend": 2 * frame["a"] + frame["c"], "visits": frame["b"] - 0.5 * frame["c"]})
    texts = pd.DataFrame({"text": ["good fast service", "slow and rude", "great value", "terrible wait",
                                   "friendly staff", "never again", "", "good value, fast"] * 5})
    sentiment = np.array([1, 0, 1, 0, 1, 0, 0, 1] * 5)
    stamped = pd.DataFrame({"x": frame["a"], "when": pd.date_range("2024-01-01", periods=len(frame), freq="h")})
    return {
        "gboost": (GradientBoostingClassifier(n_estimators=20, random_state=0).fit(frame, label), frame, None),
        "histgb": (HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(gaps, frame["c"] * 2), gaps, None),
        "outliers": (IsolationForest(n_estimators=30, random_state=0).fit(frame), frame, None),
        "two_targets": (LinearRegression().fit(frame, targets), frame, ["spend", "visits"]),
        "two_anon": (LinearRegression().fit(frame, targets.to_numpy()), frame, None),
        "texts": (make_pipeline(ColumnTransformer([("words", TfidfVectorizer(), "text")]),
                                LogisticRegression()).fit(texts, sentiment), texts, None),
        "stamped": (make_pipeline(ColumnTransformer([("x", "passthrough", ["x"])]), LinearRegression())
                    .fit(stamped, frame["b"]), stamped, None),
    }


def build_families(store: Path) -> dict[str, tuple[Any, pd.DataFrame]]:
    """Register every family in `store`; returns name → (fitted estimator, its sample)."""
    built = {}
    for name, (estimator, sample, targets) in families().items():
        register_model(estimator, name, sample, store=store, targets=targets)
        built[name] = (estimator, sample)
    return built
