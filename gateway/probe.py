"""The status of one GET, over a Unix socket or loopback TCP, with the standard library only.

The processes that only probe (the watchdog, the scaler, `gateway up` waiting for pools) run
for the stack's whole life or on its start path: with http.client they do not import requests
and urllib3 (about 11 MB and 50 ms each; tests/unit/test_entry_imports.py).
"""

from __future__ import annotations

import http.client
import socket

from gateway.topology import Endpoint

# The Host header sent over a socket (the internal NGINX matches no server_name).
SOCKET_HOST = "localhost"


class _UnixConnection(http.client.HTTPConnection):
    """http.client's connection with the TCP connect replaced by an AF_UNIX one."""

    def __init__(self, socket_path: str, timeout_s: float) -> None:
        super().__init__(SOCKET_HOST, timeout=timeout_s)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def get_status(endpoint: Endpoint, path: str, timeout_s: float) -> int:
    """The status of GET path, 0 when nothing answers (a probe: never raises for the transport)."""
    connection = (_UnixConnection(endpoint.path, timeout_s) if endpoint.path
                  else http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout_s))
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()
