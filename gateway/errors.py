"""Errors that carry their HTTP status and a stable code, so one handler serves them all."""

from __future__ import annotations

import re

CLIP_CHARS = 200  # a value echoed in a detail or a log line: at most this, then its length
DETAIL_CHARS = 2000  # a whole detail, however many values it names
_LONG_RUN = re.compile(rf"\S{{{CLIP_CHARS + 1},}}")


def clip(value: object, limit: int = CLIP_CHARS) -> str:
    """`value` as text of at most `limit` characters; a cut one says how long it was, so an
    attacker's megabyte name costs neither the client's body nor the logs more than this."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def clip_detail(detail: str) -> str:
    """Every unbroken run over CLIP_CHARS (a name, a path, a value) clipped, then the whole."""
    return clip(_LONG_RUN.sub(lambda m: clip(m.group()), detail), DETAIL_CHARS)


class GatewayError(Exception):
    """Base of every error the API reports. `detail` names the problem for a human; the values
    it echoes are clipped (clip_detail), whoever raised it."""

    status = 500
    code = "internal"
    title = "Internal error"
    retry_after_s: int | None = None  # sent as Retry-After when set

    def __init__(self, detail: str, *, model: str | None = None) -> None:
        detail = clip_detail(detail)
        super().__init__(detail)
        self.detail = detail
        self.model = None if model is None else clip(model)

    def to_problem(self, request_id: str | None = None) -> dict[str, object]:
        """The application/problem+json body (RFC 9457) for this error."""
        body: dict[str, object] = {
            "type": f"https://gateway.invalid/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.model is not None:
            body["model"] = self.model
        if request_id is not None:
            body["request_id"] = request_id
        return body

    def headers(self) -> dict[str, str]:
        """Headers every envelope of this error carries: Retry-After when it says when to retry."""
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class BadRequest(GatewayError):
    """Malformed JSON or CSV, an unknown body form, a bad model or version name in the URL."""

    status, code, title = 400, "bad_request", "Malformed request"


class UnknownParam(GatewayError):
    """A `params` key the model does not take, or a value it does not accept."""

    status, code, title = 400, "unknown_param", "Unknown or invalid parameter"


class Unauthorized(GatewayError):
    """No API key, or one that is not in the keys file (when `server.api_keys_file` is set)."""

    status, code, title = 401, "unauthorized", "API key missing or not valid"

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "WWW-Authenticate": 'Bearer realm="gateway", Key realm="gateway"'}


class Forbidden(GatewayError):
    """A valid key whose scope or model list does not cover this route or model."""

    status, code, title = 403, "forbidden", "API key not allowed here"


class NotFound(GatewayError):
    """An unknown model, version or route."""

    status, code, title = 404, "not_found", "Not found"


class PayloadTooLarge(GatewayError):
    """A body over `server.body_limit_bytes` (Flask, or NGINX's own 413 page)."""

    status, code, title = 413, "payload_too_large", "Request body too large"


class UriTooLong(GatewayError):
    """A request line over NGINX's 8 KiB (NGINX's own page answers it, in this shape)."""

    status, code, title = 414, "uri_too_long", "Request line too long"


class HeadersTooLarge(GatewayError):
    """A header line over 8 KiB, or all headers over 32 KiB (NGINX's own page, in this shape)."""

    status, code, title = 431, "headers_too_large", "Request headers too large"


class UnsupportedMediaType(GatewayError):
    """A content type or charset the protocol does not read."""

    status, code, title = 415, "unsupported_media_type", "Unsupported content type"


class TooManyRequests(GatewayError):
    """Over `server.rate_limit_rps` (NGINX's own 429 page)."""

    status, code, title = 429, "rate_limited", "Too many requests"


class JobNotFinished(GatewayError):
    """GET /jobs/<id>/result before the job is done (queued, running, failed or cancelled)."""

    status, code, title = 409, "job_not_finished", "Job not finished"


class InvalidInput(GatewayError):
    """Data that do not fit the model: a missing or extra column, a wrong type, an unknown level."""

    status, code, title = 422, "invalid_input", "Input does not fit the model"


class ModelError(GatewayError):
    """The model raised on these data; the detail carries its message (R's condition message too)."""

    status, code, title = 422, "model_error", "The model raised on these data"


PROBLEM_STATUSES = (400, 409, 422, 503)  # the statuses a model may ask for
_PROBLEM_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class ModelProblem(GatewayError):
    """A problem the model named itself (`gateway.ModelProblem`, R's `gatewayr::problem()`):
    its status (400, 409, 422 or 503; any other becomes 422) and its type, the code every
    envelope carries (`[a-z][a-z0-9_]{0,63}`; any other becomes `model_error`)."""

    status, code, title = 422, "model_problem", "The model refused these data"

    def __init__(self, status: object = 422, type: object = "model_error", detail: object = "", *,
                 model: str | None = None) -> None:
        notes = []
        if not (isinstance(status, int) and status in PROBLEM_STATUSES):
            notes.append(f"the model asked for status {clip(status, 20)}, which is not one of "
                         f"{', '.join(map(str, PROBLEM_STATUSES))}, so this is a 422")
            status = 422
        if not (isinstance(type, str) and _PROBLEM_TYPE.fullmatch(type)):
            notes.append(f"the model named the problem type {clip(repr(type), 80)}, which is not a "
                         "token [a-z][a-z0-9_]{0,63}, so it is model_error")
            type = "model_error"
        text = str(detail) or f"the model named the problem {type}"
        super().__init__(f"{text} ({'; '.join(notes)})" if notes else text, model=model)
        self.status, self.code = int(status), str(type)


class BadGateway(GatewayError):
    """An R worker answered something that is not a reply, or died mid-request."""

    status, code, title = 502, "bad_gateway", "Model worker failed"


class Unavailable(GatewayError):
    """The model failed to load or is not ready, its R pool has no live worker, or Gunicorn restarts."""

    status, code, title = 503, "unavailable", "Model unavailable"


class Busy(Unavailable):
    """A model at its max_in_flight: refused at once, so its load never holds the threads that
    other models' requests need."""

    code, title, retry_after_s = "busy", "Model busy", 1


class GatewayTimeout(GatewayError):
    """The model did not answer within its `timeout_s`."""

    status, code, title = 504, "timeout", "Model timed out"


class ConfigError(Exception):
    """A bad config or model store, found at start-up before anything runs."""
