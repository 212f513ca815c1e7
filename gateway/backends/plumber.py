"""R in supervisor-managed Plumber pools, reached through the internal NGINX upstream: the
generic worker pool (saved R models, gatewayr's wire format) and the user-script pool (a
plumber.R served as written; only it passes requests through, see `forward`).

NGINX balances (least_conn) and retries another worker on connection errors and 502s; this
backend adds explicit timeouts and turns every failure into the contract's status.
"""

from __future__ import annotations

import http.cookiejar
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util import SKIP_HEADER

from gateway import context, metrics, poolstate, tracing
from gateway.backends.base import Backend, BatchDefaults, Health
from gateway.backends.kinds import BackendKind, BuildContext, Resolved, version_order
from gateway.backends.r_reply import last_r_error, predictions_from_reply
from gateway.codecs import (
    BINARY_WIRE_TYPE,
    Table,
    decode_wire_reply,
    encode_binary_request,
    encode_script_request,
    encode_wire_request,
    normalise_script_reply,
)
from gateway.errors import BadGateway, ConfigError, GatewayError, GatewayTimeout, NotFound, Unavailable
from gateway.integrity import file_problem, tree_problem
from gateway.meta import ModelMeta
from gateway.settings import ClusterTls, ModelSettings, cluster_secret, cluster_tls
from gateway.topology import Endpoint, PoolPlan
from gateway.unix_http import SOCKET_HOST, UnixAdapter, connection_pool

CONNECT_TIMEOUT_S = 2.0
UPSTREAM_FAILED_HEADER = "X-Gateway-Upstream"  # set by the internal NGINX's own error pages
DEFAULT_BATCH_ROWS = 256  # one R call for up to 256 rows costs about what one row does
# A queued request waits for a worker to free up, which takes one R call (5-15 ms on 2 busy
# cores); a 2 ms cap sent most queued requests off alone and halved the gain (bench/serving.py),
# so the cap is only a guard against a call that hangs.
DEFAULT_BATCH_WAIT_MS = 50.0
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_BINARY = {"Content-Type": BINARY_WIRE_TYPE}  # gatewayr's binary wire (gateway/codecs/rwire_binary.py)
# Tells a user's script that the gateway's predict contract is calling: an R error then answers
# R's message in the wire format, where a client of the script's own routes gets Plumber's
# message-free {"error":"500 - Internal server error"} (gatewayr's add_script_errors).
# The public pass-through never forwards a client's copy of it.
PREDICT_HEADER = "X-Gateway-Predict"
# A pool that follows the load with no worker running: how often a waiting request looks for one,
# and how long a client that got the 503 should wait (a worker is most likely starting by then).
_COLD_POLL_S = 0.05
COLD_RETRY_AFTER_S = 5
_WARM_S = 1.0  # a call answered this recently: the pool has a worker, skip looking for one


class _Sessions:
    """Keep-alive connections per process: created lazily, so never shared across a fork.

    Predict goes through a bare urllib3 pool: requests' per-call layer (settings merge, hooks,
    cookies, URL parsing) cost ~0.7 ms of a 1-row R predict's gateway overhead on 2 cores, and
    buys nothing on a fixed loopback hop. The pass-through uses the same pool: a requests
    Session would keep a cookie jar per process and replay one client's cookies to the next.
    """

    def __init__(self, pool_size: int, internal_url: str) -> None:
        self._pid = -1
        self._session: requests.Session | None = None
        self._pool_pid = -1
        self._pool: urllib3.HTTPConnectionPool | None = None
        self._lock = threading.Lock()
        self._pool_size = pool_size
        self._socket = internal_url.removeprefix("unix:") if internal_url.startswith("unix:") else ""
        parts = urlsplit(internal_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80

    def pool(self) -> urllib3.HTTPConnectionPool:
        if self._pool is None or self._pool_pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pool_pid != os.getpid():
                    endpoint = Endpoint.unix(self._socket) if self._socket else Endpoint(self._host, self._port)
                    self._pool = connection_pool(endpoint, maxsize=self._pool_size, retries=False, block=False)
                    self._pool_pid = os.getpid()
        return self._pool

    def get(self) -> requests.Session:
        if self._session is None or self._pid != os.getpid():
            with self._lock:
                if self._session is None or self._pid != os.getpid():
                    session = requests.Session()
                    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self._pool_size, max_retries=0)
                    session.mount("http://", adapter)
                    if self._socket:  # the internal NGINX's socket; other hosts stay on TCP
                        session.mount(f"http://{SOCKET_HOST}/", UnixAdapter(self._socket, self._pool_size))
                    session.trust_env = False  # loopback only: never route through a proxy
                    # One session serves every client: a cookie a script sets for one client must
                    # never be sent on another's request, so the session keeps none.
                    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
                    self._session, self._pid = session, os.getpid()
        return self._session


class PlumberPool(Backend):
    """A generic R worker pool: gatewayr loads the saved model and answers the wire format."""

    kind = "plumber"

    def __init__(self, meta: ModelMeta, model: ModelSettings, pool: PoolPlan, internal_url: str,
                 cluster_secret: str = "", run_dir: str | None = None, tls: ClusterTls | None = None) -> None:
        super().__init__(meta)
        self.run_dir = run_dir  # where the workers' logs are, to say why a pool is down
        # Mutual TLS to other hosts: health asks them now, as the caller of /readyz expects (the
        # host prober's view, up to an interval old, decides only NGINX's upstreams and metrics).
        self._tls = tls
        self._host_headers = {"X-Gateway-Secret": cluster_secret} if cluster_secret else {}
        self.model = model
        self.pool = pool
        http_base = f"http://{SOCKET_HOST}" if internal_url.startswith("unix:") else internal_url
        self.base_url = f"{http_base}/r/{pool.key}"
        self._base_path = f"/r/{pool.key}"
        self._timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=model.timeout_s)
        self._sessions = _Sessions(pool_size=max(8, 4 * len(pool.upstreams)), internal_url=internal_url)
        # Only a pool of local workers that may all be stopped waits for one to start.
        self._cold_starts = pool.scales and not pool.hosts
        self._answered_at = -math.inf
        self._in_flight = metrics.POOL_IN_FLIGHT.labels(pool.model, pool.key)
        self._cold_wait = metrics.POOL_COLD_WAIT.labels(pool.model, pool.key)

    def batching(self) -> BatchDefaults:
        """On: R's predict is vectorised; one call slot per worker."""
        return BatchDefaults(DEFAULT_BATCH_ROWS, DEFAULT_BATCH_WAIT_MS, slots=len(self.pool.upstreams))

    def check(self) -> None:
        """A stored version's files are the registered ones (R checks them again as it loads)."""
        if self.pool.hosts and not self.pool.workers:
            return
        self._refuse(file_problem(Path(self.pool.target) / self.meta.artefact, self.meta.sha256))

    def _refuse(self, problem: str | None) -> None:
        if problem is not None:
            raise ConfigError(f"model '{self.model.name}' version {self.meta.version}: {problem}")

    def load(self) -> None:
        """Nothing to load here: supervisord runs the pool; readiness comes from health()."""

    def predict(self, table: Table, params: dict[str, Any]) -> list[Any]:
        """The binary wire when the table fits it (R reads each column in one step), else JSON."""
        binary = encode_binary_request(table, self.meta.inputs, params, self.model.name)
        if binary is None:
            reply = self._post("/predict", encode_wire_request(table, self.meta.inputs, params, self.model.name))
        else:
            reply = self._post("/predict", binary, _BINARY)
        return self._decode(reply, lambda doc: decode_wire_reply(doc, table.n_rows))


    def health(self) -> Health:
        """Local workers: live = accepting connections on their socket (a worker busy with a long
        predict still counts). Remote hosts: their NGINX always accepts, so ask for the pool's health
        route through it (an R worker there must answer).
        """
        hosts = {host.address: self._host_answers(host) for host in self.pool.hosts}
        live = sum(_accepts(w) for w in self.pool.workers) + sum(hosts.values())
        total = len(self.pool.upstreams)
        states = self._states()
        if not live and self.pool.min_workers == 0 and not (states and states.get("fatal")):
            detail = (f"ready on demand: no R worker running (workers.min = 0); a request starts one and "
                      f"waits up to cold_start_s = {self.model.cold_start_s:g} s")
            return Health(ready=True, detail=detail, live=0, total=total, hosts=hosts or None, states=states,
                          on_demand=True)
        detail = "" if live else f"no live R worker (0 of {total}){self._last_r_error()}"
        return Health(ready=live > 0, detail=detail, live=live, total=total, hosts=hosts or None, states=states)

    def _states(self) -> dict[str, int] | None:
        """A scaling pool's workers as supervisord sees them (the scaler's last word), else None."""
        if not self.pool.scales or self.run_dir is None:
            return None
        states = poolstate.read_states(self.run_dir).get(self.pool.key)
        if states is None:
            return None
        counts = {"running": states.running, "starting": states.starting, "stopped": states.stopped}
        return counts | ({"fatal": states.fatal} if states.fatal else {})

    @contextmanager
    def _call(self) -> Iterator[None]:
        """One call to the pool: counted in flight (what the scaler watches), and for a pool with
        every worker stopped, held until one accepts connections (a cold start)."""
        self._in_flight.inc()
        try:
            if self._cold_starts and time.monotonic() - self._answered_at > _WARM_S:
                self._wait_for_worker()
            yield
            self._answered_at = time.monotonic()
        finally:
            self._in_flight.dec()

    def _wait_for_worker(self) -> None:
        """Until a local worker accepts, at most cold_start_s; the scaler sees this call in flight
        with none running and starts one. Past the limit: 503 with Retry-After."""
        deadline = time.monotonic() + self.model.cold_start_s
        if not any(_accepts(w) for w in self.pool.workers):
            self._cold_wait.set(time.time())
        while not any(_accepts(w) for w in self.pool.workers):
            if time.monotonic() >= deadline:
                error = Unavailable(
                    f"model '{self.model.name}' has no R worker running (workers.min = "
                    f"{self.pool.min_workers}) and none started within cold_start_s = "
                    f"{self.model.cold_start_s:g} s; one is on its way, retry in {COLD_RETRY_AFTER_S} s",
                    model=self.model.name)
                error.retry_after_s = COLD_RETRY_AFTER_S
                raise error
            time.sleep(_COLD_POLL_S)

    def _last_r_error(self) -> str:
        """What R said last in its workers' logs when none is live: why the pool cannot start."""
        if self.run_dir is None:
            return ""
        for index in range(1, len(self.pool.workers) + 1):
            error = last_r_error(Path(self.run_dir) / "logs" / f"plumber-{self.pool.key}-{index}.log", 4096)
            if error:
                return f"; R said: {error}"
        return ""

    def _host_answers(self, host: Endpoint) -> bool:
        tls = self._tls
        try:
            reply = self._sessions.get().get(f"{'https' if tls else 'http'}://{host.address}{self.pool.health_path}",
                                             headers=self._host_headers, timeout=(0.5, 2.0),
                                             verify=str(tls.ca) if tls else True,
                                             cert=(str(tls.cert), str(tls.key)) if tls else None)
        except requests.RequestException:
            return False
        return reply.status_code == 200

    def _post(self, route: str, body: bytes, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        with self._call():
            return self._post_once(route, body, headers)

    def _post_once(self, route: str, body: bytes, headers: dict[str, str] | None) -> urllib3.BaseHTTPResponse:
        # A saved model's predict has no side effects, so it is sent once more when the reply was
        # cut off: an R worker killed while writing its reply leaves NGINX a started response it
        # cannot re-send, and the client would get a 503 although the pool has a live worker.
        # A user's script route may not be idempotent: never re-sent.
        attempts = 2 if self.pool.kind == "model" else 1
        # With tracing on, R gets a traceparent naming the current (backend call) span, and its
        # phase timings come back in a header: the R side of the trace (gateway/tracing.py).
        sent = _JSON | context.trace_headers() | tracing.propagation_headers() | (headers or {})
        with tracing.r_call("plumber") as r_side:
            for attempt in range(1, attempts + 1):
                try:
                    reply = self._sessions.pool().urlopen(
                        "POST", self._base_path + route, body=body, headers=sent,
                        timeout=self._timeout, retries=False, redirect=False, preload_content=True,
                    )
                    break
                except urllib3.exceptions.ProtocolError as exc:
                    if attempt == attempts:
                        raise self._transport_error(exc) from exc
                except urllib3.exceptions.HTTPError as exc:
                    raise self._transport_error(exc) from exc
            r_side[tracing.R_TIMINGS_HEADER] = reply.headers.get(tracing.R_TIMINGS_HEADER, "")
        if reply.headers.get(UPSTREAM_FAILED_HEADER):
            raise self._pool_failure()
        return reply

    def _decode(self, reply: urllib3.BaseHTTPResponse, to_predictions: Any) -> list[Any]:
        binary = reply.headers.get("Content-Type", "").startswith(BINARY_WIRE_TYPE)
        return predictions_from_reply(
            reply.status, reply.data, to_predictions,
            model=self.model.name, source="the R worker", script=self.pool.kind == "script", binary=binary,
        )

    def _transport_error(self, exc: Exception) -> GatewayError:
        name = self.model.name
        if isinstance(exc, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError):
            return GatewayTimeout(
                f"model '{name}' did not answer within its timeout of {self.model.timeout_s:g} s",
                model=name,
            )
        return Unavailable(
            f"the R pool proxy for model '{name}' is not reachable ({type(exc).__name__})", model=name
        )

    def _pool_failure(self) -> GatewayError:
        health = self.health()
        name = self.model.name
        if not health.live:
            return Unavailable(
                f"no live R worker for model '{name}' (0 of {health.total} up); "
                "supervisord restarts them, retry shortly", model=name,
            )
        return BadGateway(
            f"the R worker for model '{name}' crashed or closed the connection mid-request, "
            "and the retry on another worker failed too", model=name,
        )

class ScriptPool(PlumberPool):
    """A user's Plumber script: predict calls its `predict_route`; its own routes pass through."""

    def batching(self) -> BatchDefaults:
        """Off: a user's route may not be row-wise, unless its config sets batch.max_size."""
        return BatchDefaults(1, DEFAULT_BATCH_WAIT_MS, slots=len(self.pool.upstreams))

    def check(self) -> None:
        """A stored script's directory is the registered one; a script named by path in the
        config is served as written, unchecked."""
        if self.meta.version == "script" or (self.pool.hosts and not self.pool.workers):
            return
        self._refuse(tree_problem(Path(self.pool.target).parent, self.meta.tree_sha256))

    def predict(self, table: Table, params: dict[str, Any]) -> list[Any]:
        route = self.model.predict_route
        if route is None:
            raise NotFound(
                f"model '{self.model.name}' is a Plumber script with no predict_route in its config; "
                f"call its own routes under /plumber/{self.model.name}/",
                model=self.model.name,
            )
        reply = self._post(route, encode_script_request(table, self.model.input_format), {PREDICT_HEADER: "1"})
        return self._decode(reply, lambda doc: normalise_script_reply(doc, table.n_rows))

    def forward(
        self, method: str, path: str, query: bytes, headers: list[tuple[str, str]], body: bytes
    ) -> urllib3.BaseHTTPResponse:
        """Pass a request to the script's own route unchanged (for /plumber/<name>/<path>).

        `path` is already confined and escaped (gateway.api.plumber_path); it goes under this
        pool's prefix, whatever it says. No session, no cookie jar: the connection pool is
        shared, nothing else is, so a request carries its own client's headers only, and the
        reply's headers stay as they came (Set-Cookie not folded, body not decoded).
        """
        target = f"{self._base_path}/{path}" + (f"?{query.decode('latin-1')}" if query else "")
        # The id the gateway settled on replaces the client's (which may have been refused).
        trace = context.trace_headers() | tracing.propagation_headers()
        sent = urllib3.HTTPHeaderDict()
        for name, value in headers:
            if name.lower() not in {h.lower() for h in trace}:
                sent.add(name, value)
        sent.update(trace)
        for name in ("User-Agent", "Accept-Encoding"):  # only what the client itself sent
            sent.setdefault(name, SKIP_HEADER)
        try:
            with self._call():
                reply = self._sessions.pool().urlopen(
                    method, target, body=body or None, headers=sent, timeout=self._timeout, retries=False,
                    redirect=False, preload_content=True, decode_content=False,
                )
        except urllib3.exceptions.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if reply.headers.get(UPSTREAM_FAILED_HEADER):
            raise self._pool_failure()
        return reply


def _accepts(endpoint: Endpoint) -> bool:
    try:
        if endpoint.path:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.3)
                sock.connect(endpoint.path)
            return True
        with socket.create_connection((endpoint.host, endpoint.port), timeout=0.3):
            return True
    except OSError:
        return False


def pool_backend(meta: ModelMeta, model: ModelSettings, pool: PoolPlan, internal_url: str,
                 cluster_secret: str = "", run_dir: str | None = None, tls: ClusterTls | None = None) -> PlumberPool:
    """The backend for one pool of the plan: a user's script pool, or the generic worker pool."""
    cls = ScriptPool if pool.kind == "script" else PlumberPool
    return cls(meta, model, pool, internal_url, cluster_secret, run_dir=run_dir, tls=tls)


def _build(model: ModelSettings, ctx: BuildContext) -> Resolved:
    """The pools `gateway up` planned for the model: its current version and those its aliases,
    traffic and shadow name (R pools start at up, so no other version is served)."""
    plan = ctx.plan
    pool = plan.pools.get(model.name)
    if pool is None:
        raise ConfigError(f"models.{model.name}: the run plan has no R pool for it; run `gateway up`")
    meta = script_meta(model.name) if pool.version == "script" else ctx.store.read_meta(model.name, pool.version)
    if meta.language != "r":
        raise ConfigError(f"models.{model.name}: version {pool.version} is not an R model")
    secret, tls = cluster_secret(ctx.settings), cluster_tls(ctx.settings)
    backends: dict[str, Backend] = {
        pool.version: pool_backend(meta, model, pool, plan.internal_url, secret, run_dir=plan.run_dir, tls=tls)
    }
    for extra in plan.all_pools:  # the versions its aliases, traffic and shadow name
        if extra.model == model.name and not extra.primary:
            extra_meta = ctx.store.read_meta(model.name, extra.version)
            backends[extra.version] = pool_backend(extra_meta, model, extra, plan.internal_url, secret,
                                                   run_dir=plan.run_dir, tls=tls)
    return Resolved(pool.version, sorted(backends, key=version_order), backends=backends)


def script_meta(name: str) -> ModelMeta:
    """Metadata for a script named in the config: no schema, so rows pass as sent."""
    return ModelMeta(
        name=name, version="script", language="r", format="plumber", artefact="plumber.R",
        inputs=(), outputs={}, sha256="", created_at="", framework={},
        description="a Plumber script served as written",
    )


KIND = BackendKind(
    name="plumber", language="r",
    summary="saved R models in generic R worker pools, or a user's Plumber script served as written",
    build=_build, r_pool=True, keys=("hosts", "script"),
)
