"""The binary tensor data extension of the v2 protocol (Triton's; tritonclient's default for inputs).

The body is a JSON inference request of Inference-Header-Content-Length bytes, then the raw data
of each input whose parameters give a `binary_data_size`, in input order: little-endian numbers,
one byte per BOOL, and for BYTES each element as a 4-byte little-endian length and its bytes.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from gateway.errors import BadRequest

INTEGER_TYPES = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
FLOAT_TYPES = ("FP16", "FP32", "FP64")
BINARY_HINT = "binary tensor data need the Inference-Header-Content-Length header; or send JSON tensors"
_NUMPY = {"BOOL": "?", "INT8": "i1", "INT16": "i2", "INT32": "i4", "INT64": "i8", "UINT8": "u1", "UINT16": "u2",
          "UINT32": "u4", "UINT64": "u8", "FP16": "f2", "FP32": "f4", "FP64": "f8"}


def split_binary(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(JSON header, binary data) of a body; without Inference-Header-Content-Length all is JSON."""
    if header_length is None:
        return body, b""
    if not (header_length.isascii() and header_length.isdigit()) or int(header_length) > len(body):
        raise BadRequest(f"Inference-Header-Content-Length {header_length!r} is not a length within the "
                         f"{len(body)}-byte body")
    return body[:int(header_length)], body[int(header_length):]


def from_binary(raw: bytes, datatype: str, where: str) -> list[Any]:
    """Raw tensor bytes (the binary extension) → values; a float NaN is a missing value."""
    if datatype == "BYTES":  # each element: a 4-byte little-endian length, then that many bytes
        values: list[Any] = []
        at = 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise BadRequest(f"{where}: BYTES data end inside an element's length")
            (length,) = struct.unpack_from("<I", raw, at)
            if at + 4 + length > len(raw):
                raise BadRequest(f"{where}: BYTES element {len(values) + 1} runs past the data")
            try:
                values.append(raw[at + 4:at + 4 + length].decode("utf-8"))
            except UnicodeDecodeError:
                raise BadRequest(f"{where}: BYTES element {len(values) + 1} is not UTF-8 text") from None
            at += 4 + length
        return values
    import numpy as np  # here: `gateway up` imports this module, and needs no NumPy

    dtype = np.dtype(_NUMPY[datatype]).newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise BadRequest(f"{where}: {len(raw)} bytes is not a whole number of {datatype} elements")
    array = np.frombuffer(raw, dtype=dtype)
    if datatype == "BOOL":
        return [bool(v) for v in array.tolist()]
    if datatype in FLOAT_TYPES:
        return [None if math.isnan(v) else v for v in array.astype(np.float64).tolist()]
    return array.tolist()
