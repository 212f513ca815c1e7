"""The path of a `/plumber/<name>/<path>` request, checked before the access check.

A key limited to script `cars` is checked against `<name>`; a path that climbs (`../`, or a
spelling that some hop decodes into one: `%2e%2e%2f`, `%252e`, `..\\`, `..;/`) would reach
another pool with it. Such paths are refused with a 400, never normalised and served: a client
that means `/plumber/echo/` can say so. The check reads the raw request target (Gunicorn's
RAW_URI, the path as the client sent it) and decodes it repeatedly, so an escape that NGINX or
Plumber decodes later is seen here too. What goes on is the client's own spelling of the path
after `/plumber/<name>/` (Plumber does not decode path parameters, so `big%20world` must stay
so), under the pool's prefix; the checks above make sure no hop can read it as a climb.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_from_bytes, unquote, urlsplit

from flask import request

from gateway.errors import BadRequest

PREFIX = "/plumber/"
ENDPOINT = "plumber_proxy.passthrough"
_DECODE_ROUNDS = 4  # past this a path that still decodes further is refused as obfuscated
_SHOWN = 200  # characters of the client's path echoed in a detail
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# RFC 3986 pchar and '/', '%' (the client's escapes stay as they are); ';' is refused above.
_PATH_SAFE = "/%!$&'()*+,=:@-._~"


def path_problem(raw_path: str) -> str | None:
    """Why this raw request path (no query) could leave its script, or None when it cannot."""
    decoded = raw_path
    for _ in range(_DECODE_ROUNDS):
        once = unquote(decoded, errors="strict") if "%" in decoded else decoded
        if once == decoded:
            break
        decoded = once
    else:
        return "percent-escapes nested more than 3 deep"
    if "\\" in decoded:
        return "a backslash (raw or encoded as %5C)"
    if decoded.count("/") != raw_path.count("/"):
        return "an encoded slash (%2F)"
    if ";" in decoded:
        return "a ';' (path parameter)"
    if _CONTROL.search(decoded):
        return "a control character (raw or encoded)"
    segments = decoded.split("/")
    if any(segment in (".", "..") for segment in segments):
        return "a dot segment ('.' or '..', raw or encoded)"
    if "" in segments[1:-1]:
        return "an empty segment ('//')"
    return None


def raw_path(environ: dict[str, object]) -> str:
    """The request target's path as the client sent it (RAW_URI from Gunicorn, REQUEST_URI from
    Werkzeug's servers); PATH_INFO re-escaped when neither is there."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not isinstance(raw, str) or not raw:
        return quote(str(environ.get("PATH_INFO", "")), safe="/;")
    if not raw.startswith("/"):  # absolute-form target: http://host/path
        raw = urlsplit(raw).path or "/"
    return raw.split("?", 1)[0].split("#", 1)[0]


def check_passthrough_path() -> None:
    """before_request hook, registered before the access check: a 400 naming the problem."""
    if request.endpoint != ENDPOINT and not request.path.startswith(PREFIX):
        return
    raw = raw_path(request.environ)
    try:
        problem = path_problem(raw)
    except UnicodeDecodeError:
        problem = "percent-escapes that are not UTF-8"
    if problem is not None:
        shown = raw if len(raw) <= _SHOWN else f"{raw[:_SHOWN]}... ({len(raw)} characters)"
        name = request.path[len(PREFIX):].split("/", 1)[0][:64] if request.path.startswith(PREFIX) else "<name>"
        raise BadRequest(
            f"the path {shown!r} has {problem}; a path under /plumber/{name}/ must stay within "
            f"script '{name}': send the route as the script names it, without it"
        )


def upstream_path(environ: dict[str, object]) -> str:
    """The script's route as the client spelled it (after `/plumber/<name>/`), for a path that
    check_passthrough_path let through. Raw bytes outside RFC 3986 are escaped, nothing else."""
    remainder = raw_path(environ).split("/", 3)[3:]
    # Gunicorn hands the target over as latin-1 text: these are the client's bytes.
    return quote_from_bytes(remainder[0].encode("latin-1", "replace"), safe=_PATH_SAFE) if remainder else ""
