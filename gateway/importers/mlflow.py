"""`gateway register NAME <MLflow model>`: a directory holding an `MLmodel` file (as
`mlflow.sklearn.save_model` writes it), or a `runs:/` or `models:/` URI resolved through
MLFLOW_TRACKING_URI.

The directory is read as files (MLmodel is YAML, the input example JSON): mlflow itself is needed
only to resolve a URI. The signature gives the input schema, the input example the sample the
model predicts on once at registration.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import yaml

from gateway.errors import ConfigError
from gateway.meta import InputSpec
from gateway.register import features_only, load_python_file, store_python_file
from gateway.schema_infer import infer_inputs

URI_SCHEMES = ("runs:/", "models:/")
# MLflow's column types → ours, and the pandas dtype a column is rebuilt with.
_TYPES: dict[str, tuple[str, str]] = {
    "double": ("double", "float64"),
    "float": ("double", "float32"),
    "long": ("integer", "int64"),
    "integer": ("integer", "int32"),
    "boolean": ("logical", "bool"),
    "string": ("string", "object"),
    "datetime": ("datetime", "datetime64[ns]"),
}
# sklearn flavor serialization formats that are pickles (loading one runs its code).
_PICKLES = ("pickle", "cloudpickle")


@dataclass(frozen=True)
class Column:
    """One column of an MLflow signature, in our terms."""

    name: str
    type: str
    pandas_dtype: str
    required: bool


def is_mlflow_source(source: str) -> bool:
    """A `runs:/`/`models:/` URI, a directory that holds an MLmodel file, or that file."""
    path = Path(source)
    return source.startswith(URI_SCHEMES) or (path / "MLmodel").is_file() or (path.name == "MLmodel" and path.is_file())


def signature_columns(inputs: str | list[dict[str, Any]] | None, where: str) -> list[Column]:
    """The signature's `inputs` (MLmodel holds them as a JSON string) as columns. ConfigError for a
    tensor signature (unnamed columns) and for a type we cannot serve, naming the column."""
    specs = json.loads(inputs) if isinstance(inputs, str) else inputs
    if not specs:
        return []
    columns = []
    for i, spec in enumerate(specs):
        kind = spec.get("type")
        if kind == "tensor" or "name" not in spec:
            raise ConfigError(f"{where}: the signature's input {i} is a tensor without a column name; the "
                              "gateway serves named columns: log the model with a pandas DataFrame input "
                              "example (or signature)")
        if kind not in _TYPES:
            raise ConfigError(f"{where}: input column {spec['name']!r} has MLflow type {kind!r}, which the gateway "
                              f"cannot serve; supported: {', '.join(_TYPES)}")
        ours, dtype = _TYPES[kind]
        columns.append(Column(str(spec["name"]), ours, dtype, bool(spec.get("required", True))))
    return columns


def conform(frame: pd.DataFrame, columns: list[Column], where: str) -> pd.DataFrame:
    """The example in the signature's column order and dtypes; ConfigError naming a signature
    column the example lacks, or a value that does not convert."""
    if not columns:
        return frame
    missing = [c.name for c in columns if c.name not in frame.columns]
    if missing:
        raise ConfigError(f"{where}: the input example lacks the signature's column(s) {', '.join(missing)}")
    out = {}
    for column in columns:
        values = frame[column.name]
        dtype = column.pandas_dtype
        if column.type == "integer" and values.isna().any():
            dtype = "Int64"  # a missing value in an integer column: pandas' nullable integer
        try:
            if column.type == "datetime":
                values = pd.to_datetime(values)
            out[column.name] = values.astype(pd.api.types.pandas_dtype(dtype))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: input example column {column.name!r} is not {column.type} ({exc})") from None
    return pd.DataFrame(out)


def schema(frame: pd.DataFrame, columns: list[Column]) -> tuple[InputSpec, ...]:
    """Our inputs: the types of the conformed example; a column the signature marks optional
    accepts missing values."""
    optional = {c.name for c in columns if not c.required}
    return tuple(replace(spec, nullable=True) if spec.name in optional else spec for spec in infer_inputs(frame))


def read_example(model_dir: Path, info: dict[str, Any] | None, where: str) -> pd.DataFrame | None:
    """The saved input example as a DataFrame (pandas split or records orient), or None."""
    if not info:
        return None
    path = model_dir / str(info.get("artifact_path", "input_example.json"))
    if not path.is_file():
        raise ConfigError(f"{where}: MLmodel names the input example {path.name}, which is missing")
    if info.get("type", "dataframe") != "dataframe":
        raise ConfigError(f"{where}: the input example is of type {info.get('type')!r}; the gateway needs a "
                          "DataFrame example (named columns)")
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "dataframe_split" in data:  # the serving_input form
        data = data["dataframe_split"]
    if isinstance(data, dict) and "columns" in data:
        return pd.DataFrame(data.get("data") or [], columns=data["columns"])
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return pd.DataFrame(data)
    raise ConfigError(f"{where}: cannot read the input example {path.name} as a table")


@dataclass(frozen=True)
class MlflowModel:
    """What an MLmodel file says about an sklearn-flavor model."""

    directory: Path
    artefact: Path
    fmt: str  # skops | joblib (a pickle)
    columns: list[Column]
    example: pd.DataFrame | None
    description: str


def read_model_dir(directory: Path, where: str) -> MlflowModel:
    """Parse MLmodel; ConfigError for a directory without one, or a flavor we do not serve."""
    mlmodel = directory / "MLmodel"
    if not mlmodel.is_file():
        raise ConfigError(f"{where}: no MLmodel file in {directory}; is it an MLflow model directory "
                          "(as mlflow.sklearn.save_model writes it)?")
    try:
        spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: {mlmodel} is not YAML ({exc})") from None
    flavors = spec.get("flavors") or {}
    sklearn = flavors.get("sklearn")
    if not isinstance(sklearn, dict):
        raise ConfigError(f"{where}: MLflow flavor(s) {', '.join(sorted(flavors)) or 'none'}; the gateway "
                          "imports the sklearn flavor only")
    serialization = str(sklearn.get("serialization_format", "cloudpickle"))
    if serialization not in ("skops", *_PICKLES):
        raise ConfigError(f"{where}: sklearn serialization format {serialization!r} is not supported "
                          "(skops, pickle, cloudpickle)")
    artefact = directory / str(sklearn.get("pickled_model", "model.pkl"))
    if not artefact.is_file() or not artefact.resolve().is_relative_to(directory.resolve()):
        raise ConfigError(f"{where}: the model file {artefact.name} named by MLmodel is missing")
    signature = spec.get("signature") or {}
    columns = signature_columns(signature.get("inputs"), where)
    example = read_example(directory, spec.get("saved_input_example_info"), where)
    return MlflowModel(directory, artefact, "skops" if serialization == "skops" else "joblib", columns, example,
                       f"imported from MLflow ({where})")


@contextmanager
def resolved(source: str) -> Iterator[Path]:
    """The local model directory of a source: itself, or a `runs:/`/`models:/` URI downloaded
    through mlflow (mlflow-skinny is enough) into a temporary directory."""
    if not source.startswith(URI_SCHEMES):
        path = Path(source).resolve()
        yield path.parent if path.name == "MLmodel" and path.is_file() else path
        return
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not tracking:
        raise ConfigError(f"{source}: set MLFLOW_TRACKING_URI to the tracking server's URL or to the local "
                          "mlruns directory that holds it")
    parsed = urlparse(tracking)
    local = parsed.scheme in ("", "file")
    if local and not Path(parsed.path if parsed.scheme else tracking).is_dir():
        raise ConfigError(f"{source}: MLFLOW_TRACKING_URI is {tracking}, which is not a directory")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mlflow warns about its own optional parts at import
            import mlflow.artifacts
            from mlflow.exceptions import MlflowException
    except ImportError:
        raise ConfigError(f"{source}: resolving an MLflow URI needs mlflow: pip install mlflow-skinny") from None
    # Reading a local file store only: MLflow 3 refuses file stores unless told this.
    saved = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    if local:
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        with tempfile.TemporaryDirectory(prefix="gateway-mlflow-") as scratch:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    downloaded = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=scratch)
            except MlflowException as exc:
                raise ConfigError(f"{source}: {exc.message} (tracking URI {tracking})") from None
            yield Path(downloaded)
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = saved


def import_mlflow(store_root: Path, name: str, source: str, *, sample: Path | None = None, description: str = "",
                  trust: bool = False) -> str:
    """Register an MLflow sklearn model as a new version; returns the version. The signature's
    columns and types are the schema; `sample` (CSV) stands in for a missing input example. A
    pickled model needs `trust` and is served with `trusted = true`; a skops one is checked as
    `gateway register model.skops` checks it."""
    with resolved(source) as directory:
        model = read_model_dir(directory, source)
        frame = pd.read_csv(sample) if sample is not None else model.example
        if frame is None or frame.empty:
            raise ConfigError(f"{source}: the model has no input example; pass --sample CSV (a slice of the "
                              "training data, the model's input columns only)")
        frame = conform(frame, model.columns, source)
        if model.fmt == "joblib" and not trust:
            raise ConfigError(
                f"{source}: the model is pickled ({model.artefact.name}): loading it, here and to serve it, runs "
                "whatever code it holds. If you trust where it came from, register again with --trust (and "
                "serve it with trusted = true), or save it with mlflow.sklearn.save_model(..., "
                "serialization_format='skops')")
        estimator, trusted = load_python_file(model.artefact, model.fmt, trust=trust)
        frame = features_only(estimator, frame, None)
        inputs = schema(frame, model.columns) if model.columns else None
        return store_python_file(store_root, name, model.artefact, model.fmt, estimator, frame,
                                 description or model.description, trusted, inputs=inputs)
