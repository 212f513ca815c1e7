"""All payload translation: public request forms, public responses, and the R wire format."""

from gateway.codecs.request import DecodedRequest, decode_request, media_type
from gateway.codecs.response import (
    dumps,
    encode_predict_response,
    predictions_from_array,
    probabilities_to_rows,
)
from gateway.codecs.rwire import decode_wire_reply, encode_wire_request
from gateway.codecs.rwire_binary import CONTENT_TYPE as BINARY_WIRE_TYPE
from gateway.codecs.rwire_binary import decode_binary_reply, encode_binary_request
from gateway.codecs.script_reply import encode_script_request, normalise_script_reply
from gateway.codecs.table import Table
from gateway.codecs.validate import validate_table

__all__ = [
    "BINARY_WIRE_TYPE",
    "DecodedRequest",
    "Table",
    "decode_binary_reply",
    "decode_request",
    "decode_wire_reply",
    "dumps",
    "encode_binary_request",
    "encode_predict_response",
    "encode_script_request",
    "encode_wire_request",
    "media_type",
    "normalise_script_reply",
    "predictions_from_array",
    "probabilities_to_rows",
    "validate_table",
]
