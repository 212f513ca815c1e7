"""scikit-learn models converted to ONNX (skl2onnx), run by ONNX Runtime in the Gunicorn worker.

`register_model(estimator, name, sample, fmt="onnx")` converts the fitted estimator: when every
column of the sample is a number, with one float tensor input (rows, columns) in the sample's
order; else with one input per column (float, or string for text and categories), which a
pipeline that picks its columns by name (a ColumnTransformer) takes. Classifiers get a plain
probability matrix (no ZipMap) whose columns are the classes recorded in model.json. ONNX
Runtime computes in float32: predictions equal sklearn's within float32 rounding. Loading runs
no Python code from the artefact (no pickle).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from gateway.backends.base import Backend, BatchDefaults
from gateway.backends.kinds import BackendKind, BuildContext, Resolved, Saver
from gateway.codecs import Table, predictions_from_array, probabilities_to_rows
from gateway.errors import ConfigError, ModelError
from gateway.integrity import file_problem
from gateway.meta import ModelMeta
from gateway.settings import ModelSettings

# NumPy and schema_infer (pandas) are imported where they are used: the CLI imports every backend
# kind, and `gateway up` should not pay for them before it starts anything.

INPUT = "input"  # save's name for the one input of an all-numeric model: (rows, features), float32
NUMERIC = ("double", "integer", "logical")  # float32 columns; "string" and "factor" are string columns
DEFAULT_BATCH_ROWS = 64  # as for Python models: a 1-row run is mostly fixed cost
DEFAULT_BATCH_WAIT_MS = 2.0


class OnnxBackend(Backend):
    kind = "onnx"

    def __init__(self, meta: ModelMeta, version_dir: Path) -> None:
        super().__init__(meta)
        self.path = version_dir / meta.artefact
        self.session: Any = None
        self.classes = list(meta.outputs.get("classes") or ())

    @property
    def where(self) -> str:
        return f"model {self.meta.name!r} version {self.meta.version}"

    def check(self) -> None:
        """The artefact is the registered one (sha256); nothing is loaded."""
        problem = file_problem(self.path, self.meta.sha256)
        if problem is not None:
            raise ConfigError(f"{self.where}: {problem}")

    def load(self) -> None:
        self.check()
        self.session = _session(self.path, self.where)

    def batching(self) -> BatchDefaults:
        return BatchDefaults(DEFAULT_BATCH_ROWS, DEFAULT_BATCH_WAIT_MS, slots=1)

    def predict(self, table: Table, params: dict[str, Any]) -> list[Any]:
        import numpy as np

        kind = params.get("type", "response")
        try:
            outputs = self.session.run(None, self._feeds(table))
        except Exception as exc:  # the model's own failure on these data is the client's 422
            raise ModelError(f"{type(exc).__name__}: {exc}", model=self.meta.name) from exc
        if kind == "prob":
            return probabilities_to_rows(outputs[1], self.classes)
        return predictions_from_array(np.asarray(outputs[0]).ravel())

    def _feeds(self, table: Table) -> dict[str, Any]:
        """The session's inputs from a validated table: one float block, or one tensor per column
        (matched by position: skl2onnx rewrites names it finds unsafe)."""
        import numpy as np

        nodes = self.session.get_inputs()
        if len(nodes) == 1 and all(spec.type in NUMERIC for spec in self.meta.inputs):
            block = np.array([table.columns[spec.name] for spec in self.meta.inputs], dtype=np.float64)  # None: NaN
            return {nodes[0].name: block.T.astype(np.float32)}
        feeds = {}
        for spec, node in zip(self.meta.inputs, nodes, strict=True):
            values = table.columns[spec.name]
            column = (np.array(values, dtype=np.float64).astype(np.float32) if spec.type in NUMERIC
                      else np.array(values, dtype=object))
            feeds[node.name] = column.reshape(-1, 1)
        return feeds


def _session(path: Path, where: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Gunicorn runs workers x threads predicts at once: one core per run, no oversubscription.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # a corrupt file raises whatever ONNX Runtime raises
        raise ConfigError(f"{where}: {path.name} could not be loaded ({type(exc).__name__}: {str(exc)[:200]})") from exc


def save(estimator: Any, sample: Any, path: Path) -> dict[str, Any]:
    """Convert a fitted estimator to ONNX at `path`; returns the outputs for model.json.

    Raises ConfigError naming a column it cannot take (a date), or what skl2onnx could not convert."""
    import numpy as np
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    specs = _specs(sample)
    if all(spec.type in NUMERIC for spec in specs):
        types = [(INPUT, FloatTensorType([None, len(specs)]))]
    else:
        types = [(spec.name, FloatTensorType([None, 1]) if spec.type in NUMERIC else StringTensorType([None, 1]))
                 for spec in specs]
    classes = getattr(estimator, "classes_", None)
    options = {id(estimator): {"zipmap": False}} if classes is not None else None
    try:
        model = to_onnx(estimator, initial_types=types, options=options, target_opset=None)
    except Exception as exc:  # skl2onnx has no converter for it, or for an option it uses
        raise ConfigError(f"skl2onnx could not convert {type(estimator).__name__}: "
                          f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    path.write_bytes(model.SerializeToString())
    outputs = _outputs(None if classes is None else list(np.ravel(classes)))
    _try(path, specs, outputs, sample, f"the converted {type(estimator).__name__}")
    return outputs


def adopt(source: Path, sample: Any, path: Path) -> dict[str, Any]:
    """`gateway register NAME model.onnx --sample CSV`: a file converted elsewhere, with the
    inputs `save` would have given it (see the module's docstring) and, for a classifier, a
    probability tensor (no ZipMap). Raises ConfigError saying what does not fit."""
    specs = _specs(sample)
    session = _session(source, source.name)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    numeric = all(spec.type in NUMERIC for spec in specs)
    if not (len(inputs) == len(specs) or (numeric and len(inputs) == 1)):
        raise ConfigError(f"{source.name} takes {len(inputs)} input(s) ({', '.join(i.name for i in inputs)}); the "
                          f"sample has {len(specs)} column(s): expected one input per column"
                          + (", or one float input of all of them" if numeric else ""))
    classes: list[Any] | None = None
    if len(outputs) > 1:
        if not outputs[1].type.startswith("tensor("):
            raise ConfigError(f"{source.name}: its probabilities are a {outputs[1].type} (ZipMap); convert it "
                              "with options={id(model): {'zipmap': False}}")
        classes = _class_labels(source)
    result = _outputs(classes)
    _try(source, specs, result, sample, source.name)
    shutil.copyfile(source, path)
    return result


def _specs(sample: Any) -> list[Any]:
    from gateway.schema_infer import infer_inputs

    specs = infer_inputs(sample)
    for spec in specs:
        if spec.type not in (*NUMERIC, "string", "factor"):
            raise ConfigError(f"column {spec.name!r} is a {spec.type}: the ONNX backend takes numbers, text and "
                              "categories (encode it before the model, or register with fmt=\"skops\")")
    return list(specs)


def _outputs(classes: list[Any] | None) -> dict[str, Any]:
    """model.json's outputs: a regression, or a classifier with its labels (probability columns)."""
    import numpy as np

    if classes is None:
        return {"kind": "regression", "type": "double", "classes": None, "methods": ["response"]}
    labels = [c.item() if isinstance(c, np.generic) else c for c in classes]
    kind = "integer" if all(isinstance(c, int) for c in labels) else "string"
    return {"kind": "classification", "type": kind, "classes": labels, "methods": ["response", "prob"]}


def _class_labels(path: Path) -> list[Any]:
    """The labels of the graph's ONNX-ML classifier node, in its probability columns' order."""
    import onnx

    for node in onnx.load(str(path)).graph.node:
        if node.domain == "ai.onnx.ml" and node.op_type.endswith("Classifier"):
            for attribute in node.attribute:
                if attribute.name == "classlabels_strings":
                    return [label.decode("utf-8") for label in attribute.strings]
                if attribute.name == "classlabels_int64s":
                    return list(attribute.ints)
    raise ConfigError(f"{path.name} has two outputs but no ONNX-ML classifier node naming its classes")


def _try(path: Path, specs: list[Any], outputs: dict[str, Any], sample: Any, where: str) -> None:
    """Run the model on the sample's first rows, as served: it runs now, or registering fails."""
    meta = ModelMeta(name="-", version="-", language="python", format="onnx", artefact=path.name,
                     inputs=tuple(specs), outputs=outputs, sha256="", created_at="", framework={})
    backend = OnnxBackend(meta, path.parent)
    backend.session = _session(path, where)
    head = sample.head(2)
    table = Table({c: head[c].astype(object).tolist() for c in head.columns}, len(head))
    for kind in outputs["methods"]:
        try:
            backend.predict(table, {"type": kind})
        except ModelError as exc:
            raise ConfigError(f"{where} cannot predict on the sample ({kind}): {exc}") from exc


def _build(model: ModelSettings, ctx: BuildContext) -> Resolved:
    def make(version: str) -> Backend:
        meta = ctx.store.read_meta(model.name, version)
        if meta.format != "onnx":
            raise ConfigError(f"models.{model.name}: version {version} is a {meta.language} {meta.format} model; "
                              "backend = \"onnx\" serves model.onnx (register_model(..., fmt=\"onnx\"))")
        return OnnxBackend(meta, ctx.store.version_dir(model.name, version))

    current = ctx.current(model)
    make(current)  # refuse a wrong artefact at start-up, not on the first request
    return Resolved(current, ctx.store.versions(model.name), make)


KIND = BackendKind(
    name="onnx", language="python", summary="scikit-learn models converted to ONNX, run by ONNX Runtime in-process",
    build=_build, preload=("onnxruntime",), saver=Saver("onnx", save, adopt),
)
