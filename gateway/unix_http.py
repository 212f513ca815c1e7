"""HTTP over Unix domain sockets: the gateway's hops inside one host (to the internal NGINX,
health probes of R workers) use sockets in a private directory, which no other local user can
open, where a loopback port would be open to all of them.
"""

from __future__ import annotations

import socket
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection

from gateway.probe import SOCKET_HOST
from gateway.topology import Endpoint


class UnixHTTPConnection(HTTPConnection):
    """urllib3's connection with the TCP connect replaced by an AF_UNIX one."""

    def __init__(self, *args: Any, socket_path: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket_path = socket_path

    def _new_conn(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)  # urllib3 has resolved its default-timeout sentinel by now
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise urllib3.exceptions.NewConnectionError(self, f"cannot connect to {self.socket_path}: {exc}") from exc
        return sock


class UnixHTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = UnixHTTPConnection

    def __init__(self, socket_path: str, **kwargs: Any) -> None:
        super().__init__(SOCKET_HOST, socket_path=socket_path, **kwargs)


def connection_pool(endpoint: Endpoint, **kwargs: Any) -> urllib3.HTTPConnectionPool:
    """A urllib3 pool to a TCP endpoint or a socket."""
    if endpoint.path:
        return UnixHTTPConnectionPool(endpoint.path, **kwargs)
    return urllib3.HTTPConnectionPool(endpoint.host, endpoint.port, **kwargs)


class UnixAdapter(HTTPAdapter):
    """A requests adapter that sends every request it gets to one socket, whatever the URL's host."""

    def __init__(self, socket_path: str, pool_maxsize: int = 10) -> None:
        self._socket_path = socket_path
        self._maxsize = pool_maxsize
        super().__init__(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=0)
        self._pool = UnixHTTPConnectionPool(socket_path, maxsize=pool_maxsize, block=False)

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: Any,
                                        proxies: Any = None, cert: Any = None) -> urllib3.HTTPConnectionPool:
        return self._pool

    def get_connection(self, url: str | bytes, proxies: Any = None) -> urllib3.HTTPConnectionPool:
        return self._pool

    def close(self) -> None:
        self._pool.close()
        super().close()

