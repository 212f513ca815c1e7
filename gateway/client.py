"""A `requests` session for calling the gateway from Python, with the one re-send HTTP/1.1 allows.

A server may close an idle kept-alive connection at any moment: NGINX does on every reload, and
a client that writes its next request on that connection just then gets no answer at all
(`RemoteDisconnected`). RFC 9112 §9.3.1 lets a client re-send such a request when it is
idempotent, and every predict route is: the same rows give the same answer and the gateway keeps
no state. curl, browsers and Go's client re-send it by themselves; requests and urllib3 do not
unless told to, which is what this module does.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util import Retry

if TYPE_CHECKING:
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse


class ResendUnanswered(Retry):
    """Re-send a request whose connection failed before any reply: refused or closed unanswered.

    Never on a read timeout (the server may still be working on it; a re-send would double the
    load of a slow model) and never on an HTTP status (a 503 or 504 is an answer).
    """

    def __init__(self, resends: int = 1, **kwargs: Any) -> None:
        kwargs.setdefault("total", resends)
        kwargs.setdefault("connect", resends)
        kwargs.setdefault("read", resends)
        kwargs.setdefault("status", 0)
        kwargs.setdefault("other", 0)
        kwargs.setdefault("redirect", 0)
        kwargs.setdefault("allowed_methods", None)  # predict is a POST, and idempotent
        kwargs.setdefault("raise_on_status", False)
        kwargs.setdefault("respect_retry_after_header", False)
        super().__init__(**kwargs)

    def increment(self, method: str | None = None, url: str | None = None,
                  response: BaseHTTPResponse | None = None, error: Exception | None = None,
                  _pool: ConnectionPool | None = None, _stacktrace: TracebackType | None = None) -> Self:
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def session(resends: int = 1) -> requests.Session:
    """A session whose requests are re-sent (at most `resends` times) when left unanswered."""
    http = requests.Session()
    adapter = HTTPAdapter(max_retries=ResendUnanswered(resends))
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http


def resends(reply: requests.Response) -> int:
    """How many times `reply`'s request was re-sent before this answer (0 for most)."""
    retries = getattr(reply.raw, "retries", None)
    return len(retries.history) if retries is not None else 0
