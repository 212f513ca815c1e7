"""Bulk predict over a streamed body (NDJSON, CSV or Arrow): read, validate and predict chunk by chunk
as the body arrives, the predictions kept in a spool and sent once the body is read. Memory is
bounded by a chunk, whatever the body's size. No Flask here.

The version is chosen once per request (traffic split, sticky per routing key), so every row of
one stream is scored by the same version. Rows are numbered from 1 across the whole body, so a
problem names the row as the client counts it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from gateway.codecs.stream import NDJSON, bulk_tables, ndjson_problem, predictions_encoder, shift_rows
from gateway.codecs.table import Table
from gateway.errors import BadRequest, GatewayError
from gateway.service import PredictionService

ON_ERROR = ("line", "fail")  # a problem line ends the predictions / a plain error reply instead
SPOOL_IN_MEMORY_BYTES = 4 * 1024 * 1024  # predictions past this wait in a temp file


@dataclass(frozen=True)
class StreamReply:
    """What the view sends: the model and version, the media type, and the body's pieces."""

    model: str
    version: str
    media_type: str
    body: Iterator[bytes]


def stream_predict(
    service: PredictionService, name: str, version: str | None, body: IO[bytes], content_type: str,
    accept: str, params: dict[str, Any], on_error: str, routing_key: str | None,
    problem: Callable[[GatewayError], dict[str, Any]],
) -> StreamReply:
    """Score every record of `body`; raises GatewayError only for what is known before the first
    byte (unknown model or version, bad params); later problems follow `on_error`."""
    if on_error not in ON_ERROR:
        raise BadRequest(f"param 'on_error' must be one of: {', '.join(ON_ERROR)}; got {on_error!r}")
    served = service.registry.get(name)
    backend = served.backend(version if version is not None else served.route(routing_key))
    chosen = backend.meta.version
    chunk_rows = max(1, service.batcher(served, backend).max_size)
    chunks = bulk_tables(body, content_type, chunk_rows, backend.meta.inputs, served.name)
    encoder = predictions_encoder(accept, served.name)
    encode = encoder.rows

    def score(first: int, table: Table) -> bytes:
        try:
            return encode(service.predict_table(served, chosen, table, params).predictions)
        except GatewayError as error:
            shift_rows(error, first - 1)
            raise

    # The first chunk's problems are a plain error reply.
    head = score(*next(chunks))

    def rest() -> Iterator[bytes]:
        yield head
        for first, table in chunks:
            yield score(first, table)
        yield encoder.end()

    def lines() -> Iterator[bytes]:
        try:
            yield from rest()
        except GatewayError as error:
            yield ndjson_problem(problem(error))

    # CSV and Arrow have no way to say "failed here"
    fail_whole = on_error == "fail" or encoder.media_type != NDJSON
    return StreamReply(served.name, chosen, encoder.media_type, _spooled(rest() if fail_whole else lines()))


def _spooled(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Score the whole body before the reply starts, keeping the predictions in a spool (memory
    up to a few MB, then a temp file): NGINX stops passing a request body upstream once the
    reply has begun, so a reply that starts while the body still comes would stall both. Most
    HTTP/1.1 clients send the whole body before reading anyway. A failure raised here is still
    a plain error reply."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 - closed below
    try:
        for piece in pieces:
            spool.write(piece)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return _drain(spool)


def _drain(spool: IO[bytes]) -> Iterator[bytes]:
    with spool:
        while piece := spool.read(64 * 1024):
            yield piece
