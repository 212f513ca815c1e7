"""The demo models `make run` serves: Python and R side by side, built once if absent."""

from __future__ import annotations

from pathlib import Path

from gateway.paths import resource
from gateway.register import register_artefact, register_model
from gateway.rscript import run_rscript
from gateway.settings import Settings
from gateway.store import ModelStore


def build_demo_store(settings: Settings) -> list[str]:
    """Build whatever demo model the store lacks; returns the names it built."""
    store = ModelStore(settings.store_path)
    built = []
    if not store.versions("iris"):
        build_iris(settings.store_path)
        built.append("iris")
    if not (store.versions("mtcars") and store.versions("transmission")):
        run_rscript([str(resource("_r/demo/build_r_models.R")), str(settings.store_path)])
        built += ["mtcars", "transmission"]
    if not store.versions("cars"):
        register_artefact(settings.store_path, "cars", resource("_r/plumber/cars/plumber.R"), None,
                          "a user's Plumber script: stopping distance from speed")
        built.append("cars")
    return built


def build_iris(store: Path) -> str:
    """A scikit-learn classifier on iris, with column names as a client would send them."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    labels = data.target.map(dict(enumerate(data.target_names)))
    model = LogisticRegression(max_iter=1000).fit(frame, labels)
    return register_model(model, "iris", frame, store=store, description="iris species (scikit-learn)")

