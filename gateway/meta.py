"""The model metadata (`model.json`) both languages write: the schema that drives validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ColumnType = Literal["double", "integer", "logical", "string", "factor", "date", "datetime"]
COLUMN_TYPES: tuple[str, ...] = ("double", "integer", "logical", "string", "factor", "date", "datetime")
# params.type → the Python estimator method that answers it, in the order the API lists them.
METHODS: dict[str, str] = {
    "response": "predict",
    "prob": "predict_proba",
    "log_prob": "predict_log_proba",
    "decision": "decision_function",
    "score": "score_samples",
}


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: ColumnType
    levels: tuple[str, ...] | None = None
    nullable: bool = True
    pandas_dtype: str | None = None  # Python models: the training dtype, to rebuild frames alike

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "levels": list(self.levels) if self.levels is not None else None,
            "nullable": self.nullable,
        }
        if self.pandas_dtype is not None:
            out["pandas_dtype"] = self.pandas_dtype
        return out


@dataclass(frozen=True)
class ModelMeta:
    name: str
    version: str
    language: Literal["python", "r"]
    format: str  # skops | joblib | rds | plumber
    artefact: str
    inputs: tuple[InputSpec, ...]
    outputs: dict[str, Any]
    sha256: str
    created_at: str
    framework: dict[str, Any]
    description: str = ""
    # skops types this artefact holds that skops does not trust by default, trusted at
    # registration (by the user's own estimator, or `gateway register --trust`).
    trusted_types: tuple[str, ...] = ()
    # The registration scanned the .skops file and `trusted_types` is its whole list of such
    # types (maybe none): while the sha256 matches, `gateway up` need not scan it again. False in
    # model.json written before this existed: `up` scans (gateway.backends.python).
    skops_types_recorded: bool = False
    tree_sha256: str = ""  # a Plumber script's whole version directory (gateway.integrity)
    # Per-column distributions of the registration sample (gateway.drift_reference); None in
    # model.json written before drift existed, or by R alone: such a version has no drift figures.
    reference: dict[str, Any] | None = field(default=None, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def classes(self) -> list[str] | None:
        classes = self.outputs.get("classes")
        return [str(c) for c in classes] if classes else None

    @property
    def allowed_types(self) -> tuple[str, ...]:
        """Values of the `type` param: the methods recorded at registration (Python models),
        else probabilities for classifiers only (R models, and model.json written before)."""
        methods = self.outputs.get("methods")
        if methods:
            return tuple(str(m) for m in methods)
        return ("response", "prob") if self.outputs.get("kind") == "classification" else ("response",)

    @property
    def targets(self) -> list[str] | None:
        """The output names of a multi-output model, in predict's column order."""
        targets = self.outputs.get("targets")
        return [str(t) for t in targets] if targets else None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelMeta:
        inputs = tuple(
            InputSpec(
                name=str(col["name"]),
                type=col["type"],
                levels=tuple(str(v) for v in col["levels"]) if col.get("levels") else None,
                nullable=bool(col.get("nullable", True)),
                pandas_dtype=col.get("pandas_dtype"),
            )
            for col in data.get("inputs") or []
        )
        for col in inputs:
            if col.type not in COLUMN_TYPES:
                raise ValueError(f"input {col.name!r} has unknown type {col.type!r}")
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            language=data["language"],
            format=str(data["format"]),
            artefact=str(data["artefact"]),
            inputs=inputs,
            outputs=dict(data.get("outputs") or {}),
            sha256=str(data.get("sha256", "")),
            created_at=str(data.get("created_at", "")),
            framework=dict(data.get("framework") or {}),
            description=str(data.get("description", "")),
            trusted_types=tuple(str(t) for t in data.get("trusted_types") or ()),
            skops_types_recorded=data.get("skops_types_recorded") is True,
            tree_sha256=str(data.get("tree_sha256", "")),
            reference=data["reference"] if isinstance(data.get("reference"), dict) else None,
            raw=data,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "language": self.language,
            "format": self.format,
            "artefact": self.artefact,
            "description": self.description,
            "inputs": [col.to_json() for col in self.inputs],
            "outputs": self.outputs,
            "sha256": self.sha256,
            "created_at": self.created_at,
            "framework": self.framework,
        }
        if self.trusted_types:
            out["trusted_types"] = list(self.trusted_types)
        if self.skops_types_recorded:
            out["skops_types_recorded"] = True
        if self.tree_sha256:
            out["tree_sha256"] = self.tree_sha256
        if self.reference is not None:
            out["reference"] = self.reference
        return out

    @property
    def default_type(self) -> str | None:
        """The `type` an R model's predict uses when a request names none, as found at
        registration (None: not recorded, or a predict without a `type` argument, e.g. MASS::lda)."""
        default = self.outputs.get("default_method")
        return str(default) if default is not None else None
