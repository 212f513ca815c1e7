"""R's predict replies → predictions or our errors, shared by every R backend.

The Plumber pool gets `(HTTP status, JSON body)` from a worker; the rpy2 backend gets the same
pair straight from `gatewayr::handle_predict`. Mapping both through this one function is what
keeps the two R paths answering identically (status, error class and `detail`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from gateway.codecs import decode_binary_reply
from gateway.errors import BadGateway, GatewayError, GatewayTimeout, InvalidInput, ModelError, ModelProblem


def predictions_from_reply(
    status: int,
    content: bytes,
    to_predictions: Callable[[Any], list[Any]],
    *,
    model: str,
    source: str,
    script: bool = False,
    binary: bool = False,
) -> list[Any]:
    """One prediction per row from an R reply; raises the GatewayError the reply stands for.

    `source` names who answered in messages ("the R worker", "the embedded R"); `script` is
    True for a user's own Plumber script, whose 4xx replies are the model's own refusals;
    `binary` says the body is the binary wire's reply (gateway/codecs/rwire_binary.py).
    """
    if binary and status < 400:
        try:
            return to_predictions(decode_binary_reply(content))
        except ValueError as exc:
            raise BadGateway(f"{source} for model '{model}' answered an unusable reply: {exc}",
                             model=model) from None
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError:
        text = content.decode("utf-8", errors="replace")
        raise BadGateway(
            f"{source} for model '{model}' answered {status} with a body that is not JSON: {text[:200]!r}",
            model=model,
        ) from None
    if status >= 400:
        raise error_from_reply(status, document, model=model, source=source, script=script)
    try:
        return to_predictions(document)
    except ValueError as exc:
        raise BadGateway(f"{source} for model '{model}' answered an unusable reply: {exc}", model=model) from None


def error_from_reply(status: int, document: Any, *, model: str, source: str, script: bool = False) -> GatewayError:
    """An R error reply → our error; R's condition message is passed on unchanged."""
    error = document.get("error") if isinstance(document, dict) else None
    code, message = "", ""
    if isinstance(error, dict):
        code, message = str(error.get("code", "")), str(error.get("message", ""))
    elif error is not None:
        message = str(error if not isinstance(error, list) else error[0])
        if isinstance(document.get("message"), str | list):
            raw = document["message"]
            message = str(raw[0] if isinstance(raw, list) and raw else raw)
    if code == "invalid_input":
        return InvalidInput(message, model=model)
    if code == "model_problem" and isinstance(error, dict):  # gatewayr::problem(): status and type as asked
        return ModelProblem(error.get("status"), error.get("type"), message, model=model)

    if code == "timeout":  # R stopped a model that ran past its timeout_s
        return GatewayTimeout(message, model=model)
    if status == 422 or (script and status < 500) or code == "model_error":
        return ModelError(message or f"the model answered {status}", model=model)
    return BadGateway(f"{source} for model '{model}' failed ({status}): {message}", model=model)


def last_r_error(log: Path, tail_bytes: int = 8192) -> str | None:
    """R's last error in a worker's log, as one line, or None (no log, no error in its tail).

    R writes `Error in f() : ` and continues a long message on indented lines; both are kept,
    since the first line alone often says only where (`Error in stopOnLine(...)`), not why."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - tail_bytes))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    starts = [i for i, line in enumerate(lines) if line.startswith("Error")]
    if not starts:
        return None
    error = [lines[starts[-1]], *itertools.takewhile(lambda x: x[:1].isspace(), lines[starts[-1] + 1:])]
    return " ".join(" ".join(error).split())[:400]
