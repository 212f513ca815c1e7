"""Shared fixtures: small real models in a temporary model store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from gateway import tracing
from gateway.demo import build_iris
from gateway.register import register_model

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for one test, every finished span kept in memory."""
    exporter = InMemorySpanExporter()
    tracing.configure([exporter], batch=False)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def churn_frame(n: int = 60) -> tuple[pd.DataFrame, pd.Series]:
    """A toy frame with every column type a Python user brings: float, int, category."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n).astype("int64"),
            "monthly": rng.uniform(20, 120, n).round(2),
            "plan": pd.Categorical(rng.choice(["basic", "plus", "pro"], n), categories=["basic", "plus", "pro"]),
        }
    )
    target = frame["monthly"] * 0.5 + frame["tenure"] * 0.1
    return frame, target


def build_churn(store: Path) -> str:
    frame, target = churn_frame()
    encode = ColumnTransformer([("plan", OneHotEncoder(handle_unknown="error"), ["plan"])], remainder="passthrough")
    model = make_pipeline(encode, LinearRegression()).fit(frame, target)
    return register_model(model, "churn", frame, store=store, description="spend, with a categorical input")


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("store")
    build_iris(store)
    build_iris(store)  # a second version, to test version routing
    build_churn(store)
    return store
