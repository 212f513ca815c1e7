"""scikit-learn estimators and plain callables, run in the Gunicorn worker process."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.backends.base import Backend, BatchDefaults
from gateway.backends.kinds import BackendKind, BuildContext, Resolved
from gateway.backends.matrix_input import accepts_matrix, to_matrix
from gateway.codecs import Table, predictions_from_array, probabilities_to_rows
from gateway.errors import ConfigError, ModelError, ModelProblem
from gateway.integrity import file_problem
from gateway.meta import METHODS, InputSpec, ModelMeta
from gateway.settings import ModelSettings

if TYPE_CHECKING:
    import pandas as pd

# NumPy and pandas are imported where they are used: the CLI imports every backend kind, and
# `gateway up` should not pay for them before it starts anything.

DEFAULT_BATCH_ROWS = 64  # see bench/serving.py: batching on vs off for iris
DEFAULT_BATCH_WAIT_MS = 2.0


class PythonBackend(Backend):
    kind = "python"

    def __init__(self, meta: ModelMeta, version_dir: Path, *, trusted: bool) -> None:
        super().__init__(meta)
        self.path = version_dir / meta.artefact
        self.trusted = trusted
        self.model: Any = None
        self.matrix = False  # called with a float64 matrix, not a DataFrame (matrix_input)

    @property
    def where(self) -> str:
        return f"model {self.meta.name!r} version {self.meta.version}"

    def check(self) -> None:
        """The artefact is the registered one (sha256) and holds only types trusted for it.

        Runs no artefact code, so `gateway up` and `reload` run it before any worker. A .skops
        file whose registration recorded its types is not scanned again here: the sha256 says it
        is that file, and the worker's `load` scans it anyway. Scanning imports skops and with it
        scikit-learn and SciPy: 0.9 s of the demo stack's 2.9 s cold start."""
        problem = file_problem(self.path, self.meta.sha256)
        if problem is not None:
            raise ConfigError(f"{self.where}: {problem}")
        if self.meta.format == "skops" and self.meta.skops_types_recorded:
            return
        trusted_types(self.path, self.meta, trusted=self.trusted, where=self.where)

    def load(self) -> None:
        problem = file_problem(self.path, self.meta.sha256)
        if problem is not None:
            raise ConfigError(f"{self.where}: {problem}")
        trust = trusted_types(self.path, self.meta, trusted=self.trusted, where=self.where)
        try:
            self.model = load_artefact(self.path, self.meta.format, trust, where=self.where)
        except ConfigError:
            raise
        except Exception as exc:  # a corrupt file raises whatever its reader raises
            raise ConfigError(f"{self.where}: {self.path.name} could not be loaded "
                              f"({type(exc).__name__}: {str(exc)[:200]})") from exc
        self.matrix = accepts_matrix(self.model, self.meta.inputs, self.meta.allowed_types, self.meta.reference,
                                     lambda table: to_frame(table, self.meta.inputs))

    def batching(self) -> BatchDefaults:
        """On: a 1-row sklearn predict is mostly fixed cost (DataFrame build, input checks),
        so 8 queued rows cost about what 1 does. One slot: the GIL runs one predict at a time."""
        return BatchDefaults(DEFAULT_BATCH_ROWS, DEFAULT_BATCH_WAIT_MS, slots=1)

    def predict(self, table: Table, params: dict[str, Any]) -> list[Any]:
        import numpy as np

        frame = to_matrix(table, self.meta.inputs) if self.matrix else to_frame(table, self.meta.inputs)
        kind = params.get("type", "response")
        try:
            if kind == "response":
                predict = getattr(self.model, "predict", self.model)
                return predictions_from_array(predict(frame), self.meta.targets)
            values = getattr(self.model, METHODS[kind])(frame)
            if kind in ("prob", "log_prob") or np.ndim(values) == 2:  # one column per class
                return probabilities_to_rows(values, self.model.classes_)
            return predictions_from_array(values)
        except ModelProblem as exc:  # the model named its problem: status and type as it said
            raise ModelProblem(exc.status, exc.code, exc.detail, model=self.meta.name) from exc
        except Exception as exc:  # the model's own failure on these data is the client's 422
            raise ModelError(f"{type(exc).__name__}: {exc}", model=self.meta.name) from exc


TRUST_HINT = 'see docs/security.md "Trusting a model"'


def trusted_types(path: Path, meta: ModelMeta, *, trusted: bool, where: str) -> list[str]:
    """The skops types to trust when loading `path`: those recorded at registration (checked
    by sha256 before this), or all with the config's `trusted = true`. Raises ConfigError naming
    any other type, and for a pickle (joblib) artefact unless the config trusts it."""
    if meta.format == "joblib":
        if not trusted:
            raise ConfigError(
                f"{where}: {path.name} is a pickle (joblib) artefact, and loading one runs arbitrary "
                "code; re-register the model as .skops, or set trusted = true in its [models] entry "
                f"if you trust where it came from; {TRUST_HINT}"
            )
        return []
    if meta.format != "skops":
        raise ConfigError(f"{where}: format {meta.format!r} is not a Python model format (skops, joblib)")
    import skops.io as sio

    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as exc:  # not a zip, or no schema in it
        raise ConfigError(f"{where}: {path.name} is not a readable skops file "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not trusted:
        unknown = sorted(set(found) - set(meta.trusted_types))
        if unknown:
            raise ConfigError(f"{where}: skops types not trusted: {', '.join(unknown)}; {TRUST_HINT}")
    return list(found)


def load_artefact(path: Path, fmt: str, trust: list[str], *, where: str) -> Any:
    """skops loads without running code and trusts exactly `trust`; joblib is a pickle.

    Call PythonBackend.check (or trusted_types) first: this does no trust check of its own."""
    if fmt == "skops":
        import skops.io as sio

        return sio.load(path, trusted=trust)
    if fmt == "joblib":
        import joblib

        return joblib.load(path)
    raise ConfigError(f"{where}: format {fmt!r} is not a Python model format (skops, joblib)")


def to_frame(table: Table, inputs: tuple[InputSpec, ...]) -> pd.DataFrame:
    """A validated Table → the DataFrame the model was trained on (same dtypes)."""
    import numpy as np
    import pandas as pd

    if inputs and all(spec.type == "double" for spec in inputs):
        # The profile of a 1-row predict: building a Series per column cost ~0.7 ms of ~2; one
        # float64 block costs ~0.09 ms, and sklearn's input checks run faster on it too.
        block = np.array([table.columns[spec.name] for spec in inputs], dtype=np.float64)  # None → NaN
        return pd.DataFrame(block.T, columns=[spec.name for spec in inputs], copy=False)
    data: dict[str, Any] = {}
    for spec in inputs:
        values = table.columns[spec.name]
        if spec.type == "double":
            data[spec.name] = pd.Series(values, dtype="float64")  # None becomes NaN
        elif spec.type == "integer":
            data[spec.name] = pd.Series(values, dtype="int64" if None not in values else "float64")
        elif spec.pandas_dtype == "category" or (spec.type == "factor" and spec.pandas_dtype is None):
            data[spec.name] = pd.Categorical(values, categories=list(spec.levels or ()))
        elif spec.type == "datetime":
            data[spec.name] = pd.to_datetime(values, utc=True)
        else:
            data[spec.name] = pd.Series(values, dtype="object")
    return pd.DataFrame(data)


def _build(model: ModelSettings, ctx: BuildContext) -> Resolved:
    """Every stored version; each loads on first use (the named ones at start)."""
    current = ctx.current(model)

    def make(version: str) -> Backend:
        meta = ctx.store.read_meta(model.name, version)
        if meta.language != "python":
            raise ConfigError(
                f"models.{model.name}: version {version} is an R model ({meta.format}); "
                "use backend = \"plumber\" or \"rpy2\""
            )
        return PythonBackend(meta, ctx.store.version_dir(model.name, version), trusted=model.trusted)

    return Resolved(current, ctx.store.versions(model.name), make)


KIND = BackendKind(
    name="python", language="python", summary="scikit-learn estimators and callables (skops, joblib), in-process",
    build=_build, preload=("sklearn", "skops.io"),
)
