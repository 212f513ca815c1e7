"""Open Inference Protocol v2 (KServe v2) REST, JSON form: tensors ⇄ Table, predictions ⇄ tensors.

A tabular model speaks v2 with one tensor per column: each input tensor is a column of shape
[rows] (or [rows, 1]) and each output a column of predictions. Its metadata comes from the
model's InputSpec types (FP64, INT64, BOOL, BYTES for strings, factors and dates).

Our extensions, all documented in docs/api.md: a `null` element is a missing value; the request
`parameters` may carry the native params (`{"type": "prob"}`), and a response without a
request `id` carries the gateway's request id. Inputs may use the binary tensor data extension
(what tritonclient sends by default: a JSON header, then each tensor's raw little-endian bytes);
outputs are always JSON tensors, which every v2 client reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gateway.codecs.table import Table
from gateway.codecs.v2_binary import BINARY_HINT, FLOAT_TYPES, INTEGER_TYPES, from_binary
from gateway.errors import BadRequest
from gateway.meta import InputSpec, ModelMeta

DATATYPES: dict[str, str] = {
    "double": "FP64",
    "integer": "INT64",
    "logical": "BOOL",
    "string": "BYTES",
    "factor": "BYTES",
    "date": "BYTES",
    "datetime": "BYTES",
}
KNOWN_DATATYPES = frozenset({"BOOL", "BYTES", *INTEGER_TYPES, *FLOAT_TYPES})
PREDICTIONS = "predictions"
# Request parameters that belong to the protocol (tritonclient sends them), not to the model.
# `binary_data_output` (and an output's `binary_data`) ask for binary outputs: a wish, which a
# server without that extension answers with JSON tensors; tritonclient reads either.
# `content_type` and `headers` are MLServer's (its codecs and clients set them).
_PROTOCOL_PARAMS = ("binary_data_output", "sequence_id", "sequence_start", "sequence_end", "priority", "timeout",
                    "content_type", "headers")


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    table: Table
    params: dict[str, Any]
    outputs: tuple[str, ...] | None  # names the client asked for; None: every output


def tensor_metadata(inputs: tuple[InputSpec, ...]) -> list[dict[str, Any]]:
    """The model's inputs as v2 `$metadata_tensor`s: one column tensor of shape [-1] each."""
    return [{"name": spec.name, "datatype": DATATYPES[spec.type], "shape": [-1]} for spec in inputs]


def output_metadata(meta: ModelMeta) -> list[dict[str, Any]]:
    """`predictions` (or one tensor per target of a multi-output model), plus one FP64 tensor
    per class (returned with `{"type": "prob"}`)."""
    declared = meta.outputs.get("type")  # Python models record it; R ones only the kind
    if declared is None:
        declared = "string" if meta.outputs.get("kind") == "classification" else "double"
    kind = DATATYPES.get(str(declared), "BYTES")
    names = meta.targets or [PREDICTIONS]
    outputs = [{"name": name, "datatype": kind, "shape": [-1]} for name in names]
    outputs += [{"name": label, "datatype": "FP64", "shape": [-1]} for label in meta.classes or []]
    return outputs


def decode_infer_request(document: Any, binary: bytes = b"") -> InferRequest:
    """An `$inference_request` → InferRequest. Raises BadRequest (400) naming the problem.

    `binary` is what followed the JSON header (Inference-Header-Content-Length): the raw data of
    the inputs whose parameters give a `binary_data_size`, in the order of the inputs.
    """
    if not isinstance(document, dict):
        raise BadRequest("the body must be an inference request object with an 'inputs' list")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors, one per column")
    columns: dict[str, list[Any]] = {}
    offset = 0
    for index, tensor in enumerate(inputs):
        name, values, used = decode_tensor(tensor, f"inputs[{index}]", binary, offset)
        if name in columns:
            raise BadRequest(f"input tensor '{name}' is given twice")
        columns[name], offset = values, offset + used
    if offset != len(binary):
        raise BadRequest(f"the body has {len(binary) - offset} bytes of binary data that no input's "
                         "binary_data_size accounts for")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise BadRequest(f"input tensors have different lengths {sorted(lengths)}; each is a column of the table")
    return InferRequest(request_id, Table(columns, lengths.pop()), _model_params(document.get("parameters")),
                        _requested_outputs(document.get("outputs")))



def decode_tensor(tensor: Any, where: str, binary: bytes = b"", offset: int = 0) -> tuple[str, list[Any], int]:
    """One `$request_input` → (name, column values, binary bytes used).

    JSON `data` may be flat or nested row-major; binary data start at `offset` in `binary`.
    """
    if not isinstance(tensor, dict):
        raise BadRequest(f"{where} must be a tensor object with name, shape, datatype and data")
    name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.name must be a non-empty string")
    where = f"input tensor '{name}'"
    if datatype not in KNOWN_DATATYPES:
        raise BadRequest(f"{where} has datatype {datatype!r}; expected one of {', '.join(sorted(KNOWN_DATATYPES))}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"{where} has shape {shape!r}; expected a list of non-negative integers")
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise BadRequest(f"{where} has shape {shape}; a column tensor has shape [rows] or [rows, 1]")
    size = tensor["parameters"].get("binary_data_size") if isinstance(tensor.get("parameters"), dict) else None
    if size is not None:
        if type(size) is not int or not 0 <= size <= len(binary) - offset:
            raise BadRequest(f"{where} has binary_data_size {size!r} but {len(binary) - offset} bytes are left; "
                             "send Inference-Header-Content-Length with binary inputs")
        values = from_binary(binary[offset:offset + size], datatype, where)
    elif "data" not in tensor:
        raise BadRequest(f"{where} has no 'data'")
    else:
        values = _flatten(tensor["data"], where)
    if len(values) != shape[0]:
        raise BadRequest(f"{where} has shape {shape} but {len(values)} elements")
    check = _CHECKS[datatype]
    for row, value in enumerate(values, start=1):
        if value is not None and not check(value):
            raise BadRequest(f"{where} is {datatype} but element {row} is {value!r}")
    return name, values, size or 0


def encode_infer_response(
    model: str, version: str, request_id: str, predictions: list[Any], outputs: tuple[str, ...] | None
) -> dict[str, Any]:
    """An `$inference_response`: a `predictions` tensor, or one tensor per key of object elements.

    Raises BadRequest when the client asked for an output these predictions do not have.
    """
    tensors = [tensor(name, values) for name, values in _columns(predictions).items()]
    if outputs is not None:
        produced = {t["name"]: t for t in tensors}
        for name in outputs:
            if name not in produced:
                hint = "; class tensors need parameters {\"type\": \"prob\"}" if name != PREDICTIONS else ""
                raise BadRequest(f"output '{name}' is not produced here; outputs: {', '.join(produced)}{hint}",
                                 model=model)
        tensors = [produced[name] for name in outputs]
    return {"model_name": model, "model_version": version, "id": request_id, "outputs": tensors}


def tensor(name: str, values: list[Any]) -> dict[str, Any]:
    """A column of JSON values → a `$response_output` whose datatype fits every value."""
    present = [v for v in values if v is not None]
    if present and all(type(v) is bool for v in present):
        datatype = "BOOL"
    elif present and all(type(v) is int for v in present):
        datatype = "INT64"
    elif all(type(v) in (int, float) for v in present):
        datatype = "FP64"
    else:
        datatype, values = "BYTES", [v if v is None or isinstance(v, str) else str(v) for v in values]
    return {"name": name, "datatype": datatype, "shape": [len(values)], "data": values}


def _columns(predictions: list[Any]) -> dict[str, list[Any]]:
    if predictions and all(isinstance(p, dict) for p in predictions):
        keys: dict[str, None] = {}
        for element in predictions:
            keys.update(dict.fromkeys(element))
        return {str(key): [element.get(key) for element in predictions] for key in keys}
    return {PREDICTIONS: list(predictions)}


def _flatten(data: Any, where: str) -> list[Any]:
    if isinstance(data, str):
        raise BadRequest(f"{where}: data given as a string; {BINARY_HINT}")
    if not isinstance(data, list):
        raise BadRequest(f"{where} has data of type {type(data).__name__}; expected a list")
    if not any(isinstance(v, list) for v in data):
        return data
    # A column is at most [rows, 1]: one level of nesting, never deeper (no recursion to exhaust).
    flat: list[Any] = []
    for value in data:
        if isinstance(value, list) and any(isinstance(v, list | dict) for v in value):
            raise BadRequest(f"{where} has data nested deeper than a [rows, 1] column")
        flat.extend(value if isinstance(value, list) else [value])
    return flat



def _model_params(parameters: Any) -> dict[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise BadRequest("'parameters' must be an object")
    return {key: value for key, value in parameters.items() if key not in _PROTOCOL_PARAMS}


def _requested_outputs(outputs: Any) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise BadRequest("'outputs' must be a list of objects with a 'name'")
    return tuple(o["name"] for o in outputs)


def _is_float(value: Any) -> bool:
    return type(value) in (int, float) and (type(value) is int or math.isfinite(value))


_CHECKS = {
    "BOOL": lambda v: type(v) is bool,
    "BYTES": lambda v: isinstance(v, str),
    **dict.fromkeys(INTEGER_TYPES, lambda v: type(v) is int),
    **dict.fromkeys(FLOAT_TYPES, _is_float),
}
