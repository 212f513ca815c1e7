"""What the host prober last saw of each worker host, as a file in the run directory.

The prober (gateway/runtime/prober.py) writes it after every round; the app reads it for
`/readyz`, `GET /models/<name>` and the per-host metrics, so health between hosts is measured
continuously by one process instead of by every request that asks.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gateway.private_files import write_private
from gateway.settings import ClusterTls

HOSTS_FILE = "hosts.json"


@dataclass(frozen=True)
class HostState:
    answering: bool  # the last probe got a 200 from the pool's health route
    in_upstream: bool  # NGINX sends this pool's requests to it (out after repeated failures)
    latency_s: float  # of the last probe
    probes: int  # since the prober started
    failures: int  # failed probes since the prober started
    checked: float  # epoch seconds of the last probe


def write_states(run_dir: str | Path, states: dict[str, dict[str, HostState]]) -> Path:
    """Pool key → host address → state, replacing the file whole (readers never see half)."""
    doc = {"written": time.time(), "pools": {key: {address: asdict(state) for address, state in hosts.items()}
                                             for key, hosts in states.items()}}
    return write_private(Path(run_dir) / HOSTS_FILE, json.dumps(doc))


def read_states(run_dir: str | Path, max_age_s: float) -> dict[str, dict[str, HostState]] | None:
    """The prober's last round, or None when there is none younger than max_age_s (no prober,
    or it stopped): then the caller probes for itself rather than trust an old answer."""
    try:
        doc = json.loads((Path(run_dir) / HOSTS_FILE).read_text(encoding="utf-8"))
        if time.time() - float(doc["written"]) > max_age_s:
            return None
        return {key: {address: HostState(**state) for address, state in hosts.items()}
                for key, hosts in doc["pools"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def client_context(tls: ClusterTls) -> ssl.SSLContext:
    """A client's side of the mutual TLS a worker host demands: trust the cluster CA only, and
    present this host's certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    return context
