"""Typed configuration: one TOML file, `GATEWAY_*` environment overrides, validated at start.

Environment overrides use `__` between keys: `GATEWAY_SERVER__PORT=9000`,
`GATEWAY_MODELS__MTCARS__WORKERS=4`. Relative paths are relative to the config file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from gateway.errors import ConfigError

MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"  # public NGINX listen address
    port: int = 8080  # public NGINX port; the only public listener
    workers: int = 2  # gunicorn worker processes
    threads: int = 4  # threads per gunicorn worker (gthread)
    timeout_s: float = 120.0  # gunicorn worker timeout; must exceed every model timeout
    body_limit_bytes: int = 16 * 1024 * 1024  # largest request body (NGINX and Flask); larger: 413
    # Streamed predict bodies (NDJSON or Arrow, or CSV asking for NDJSON, CSV or Arrow back) and
    # job bodies are read chunk by chunk, so their limit is separate and large.
    stream_limit_bytes: int = 16 * 1024 * 1024 * 1024
    max_rows: int = 1_000_000  # rows one request may decode to; past it a 413 naming the limit
    # Bulk jobs (POST /models/<name>/jobs, docs/bulk.md) one API key may have queued or running
    # at once; the next is a 429. Without API keys every client counts as one key.
    jobs_per_key: int = 2
    # A finished job (done or failed) and its results are removed this long after it finished:
    # a result nobody fetched does not fill the disk. 0 keeps them until DELETE.
    jobs_keep_s: float = 86400.0
    # A Gunicorn worker whose resident memory is past this after a request exits once it has
    # answered it (Gunicorn starts a fresh one): memory a large request took comes back. 0: off.
    max_worker_rss_mb: int = 1024
    extra_columns: Literal["reject", "ignore"] = "reject"  # input columns the model lacks: 422, or dropped
    run_dir: str = ".run"  # rendered configs, logs, sockets, pid files
    # Gunicorn, the internal NGINX (R upstreams) and the R workers: 0 (default) serves them on Unix
    # sockets in a private directory; a port puts them on loopback TCP, where any local user can
    # call them (past NGINX's limits, and for R past the API keys).
    gunicorn_port: int = 0  # Gunicorn's loopback port (0: a Unix socket)
    internal_port: int = 0  # the internal NGINX's loopback port (0: a Unix socket)
    worker_port_base: int = 0  # first R worker port (0: Unix sockets)
    # Started as root, the stack drops to these users (docs/security.md): NGINX workers and
    # Gunicorn run as `user`, R workers (model and script code) as `r_user`, whose primary group is
    # `user`'s group and who cannot read the keys file or the cluster secret. Not root: no drop.
    # user = "": no drop even as root (only where the whole stack is already confined).
    user: str = "gateway"  # NGINX workers and Gunicorn, when started as root
    r_user: str = "gateway-r"  # R workers, when started as root
    # A file holding the secret the gateway's NGINX sends to worker hosts (`gateway worker`),
    # which refuse requests without it. Same file on every host; empty: no check.
    cluster_secret_file: str = ""
    # Mutual TLS between the gateway's NGINX and worker hosts' NGINX (`gateway certs`; docs/scale-out.md):
    # the cluster CA's certificate and this host's certificate and key (0600). All three or none;
    # set, a worker host refuses every connection without a certificate from that CA.
    cluster_ca_file: str = ""
    cluster_cert_file: str = ""  # this host's certificate (`gateway certs issue HOST`): server and client
    cluster_key_file: str = ""  # its private key (0600)
    # The host prober (gateway/runtime/prober.py) asks each worker host's health route this often;
    # a host that fails twice in a row leaves its pools' upstreams until it answers again.
    host_probe_interval_s: float = 2.0  # at most 10
    host_probe_timeout_s: float = 1.0  # per probe (connect and reply)
    # Where every process's log lines go: "files" (logs/ under run_dir, rotated), "stdout" (JSON
    # lines with a `source` field on supervisord's stdout: containers), "auto": stdout under
    # `up --exec`, files otherwise.
    log_target: Literal["auto", "files", "stdout"] = "auto"
    metrics: Literal["open", "closed"] = "open"  # GET /metrics: served, or a 404
    status_interval_s: float = 5.0  # the status page's latency chart: one point per this many seconds
    log_max_bytes: int = 10 * 1024 * 1024  # supervisord rotates each program's log at this size
    log_backups: int = 3  # rotated logs kept per program
    # Request log lines (Gunicorn workers, R workers) leave each process in batches, at most this
    # long after they are written, so supervisord wakes once per batch instead of once per request
    # (~120 us of CPU each). A killed process loses at most this long of lines (docs/observability.md).
    # 0: each line is written at once.
    log_flush_ms: float = 100.0  # 0 to 10000
    # API keys (`gateway keys add`); empty: no access control (the demo). Relative to the config.
    api_keys_file: str = ""
    open_paths: tuple[str, ...] = ("/healthz", "/readyz", "/metrics")  # reachable without a key
    rate_limit_rps: float = 0  # NGINX limit per API key, else per client address; 0: off
    rate_limit_burst: int = 20  # requests over the rate that are still accepted at once
    # The model behind MLflow's unprefixed /invocations, /ping, /health, /version (what
    # `mlflow models serve` and SageMaker-style clients call); empty: the only model, if one.
    default_model: str = ""
    # NGINX: requests in progress at once from one client address (limit_conn); past it a 429. 0: off.
    max_requests_per_address: int = 128


@dataclass(frozen=True)
class StoreSettings:
    path: str = "store"  # the model store: <path>/<model>/<version>/ (gateway register writes it)


@dataclass(frozen=True)
class BatchSettings:
    """Micro-batching of concurrent predicts (gateway/batching.py); max_size = 1 turns it off."""

    max_size: int | None = None  # rows per backend call; None: the backend's default (see docs/models.md)
    max_wait_ms: float | None = None  # longest a queued request waits for a call slot; None: default


@dataclass(frozen=True)
class PoolScale:
    """An R pool that follows the load (gateway/runtime/autoscale.py): `workers = {min, max, idle_s}`."""

    min: int = 1  # workers always running; 0: the first request starts one (it waits up to cold_start_s)
    max: int = 4  # workers at most; each is a supervisord program that starts when every running one is busy
    idle_s: float = 300.0  # a worker no request needed for this long stops (never below min)


@dataclass(frozen=True)
class PredictionLogSettings:
    """A sampled JSON line per predict request (gateway/predlog.py, docs/observability.md)."""

    sample: float = 0.0  # share of requests logged, 0 to 1; 0 (default): none
    # "file": run_dir/logs/predictions-<model>.jsonl, rotated as the other logs; or an http(s)://
    # URL that gets batches of lines POSTed as application/x-ndjson
    sink: str = "file"
    redact: tuple[str, ...] = ()  # input columns whose values never reach the log


@dataclass(frozen=True)
class ModelSettings:
    name: str
    # The name of a registered backend kind (gateway.backends.KINDS; docs/models.md lists them):
    # python (scikit-learn in-process), plumber (R worker pools), rpy2 (R in-process), ...
    backend: str = "python"
    version: str = "latest"  # the stored version served; latest: the newest at start
    description: str = ""  # shown in the model's metadata
    trusted: bool = False  # trust every skops type and pickle/joblib artefacts (they run code when loaded)
    # R pool size on this host (plumber backend); a table {min, max, idle_s} makes the pool follow
    # the load (docs/operations.md, "Pools that follow the load").
    workers: int | PoolScale = 2
    hosts: tuple[str, ...] = ()  # "host:port" of remote pool entrypoints (other hosts, k8s Services)
    timeout_s: float = 30.0  # per predict call; beyond it the client gets a 504
    # Requests of this model at once per Gunicorn worker; past it a 503 with Retry-After, so one
    # model's load cannot take the threads other models need. 0: no cap.
    max_in_flight: int = 0
    script: str | None = None  # a user's plumber.R served as written
    predict_route: str | None = None  # the script route that answers /models/<name>/predict
    input_format: Literal["records", "columns"] = "records"  # what the script's route expects
    optional: bool = False  # start the stack even if this model cannot load
    batch: BatchSettings = field(default_factory=BatchSettings)
    aliases: dict[str, str] = field(default_factory=dict)  # {champion = "3", challenger = "4"}
    traffic: dict[str, int] = field(default_factory=dict)  # {"3" = 90, "4" = 10}: unversioned predicts
    shadow: str | None = None  # a version (or alias) that gets a copy of live traffic, never replies
    # A pool at workers.min = 0: how long the first request waits for a worker to start; then a 503
    # with Retry-After.
    cold_start_s: float = 30.0

    @property
    def scale(self) -> PoolScale | None:
        """The pool's load-following limits; None for a fixed pool (`workers` an integer)."""
        return self.workers if isinstance(self.workers, PoolScale) else None

    @property
    def pool_size(self) -> int:
        """Worker programs on this host: the fixed count, or the most a scaling pool runs."""
        return self.workers.max if isinstance(self.workers, PoolScale) else self.workers
    log_predictions: PredictionLogSettings = field(default_factory=PredictionLogSettings)


@dataclass(frozen=True)
class KubernetesSettings:
    """What `gateway render --target kubernetes` needs beyond the stack's own settings."""

    namespace: str = "default"  # of every rendered object
    gateway_image: str = "gateway:latest"  # deploy/docker/gateway.Dockerfile
    worker_image: str = "gateway-r-worker:latest"  # deploy/docker/r-worker.Dockerfile
    gateway_replicas: int = 2  # gateway pods (the HPA's minimum; max_scale times it at most)
    worker_port: int = 8000  # every R worker pod listens here; its Service too
    store_claim: str = "model-store"  # PersistentVolumeClaim holding the model store
    store_size: str = "5Gi"  # storage the store claim requests
    gateway_cpu: str = "1"  # CPU request of each gateway pod (no CPU limit)
    gateway_memory: str = "1Gi"  # memory request and limit of each gateway pod
    worker_cpu: str = "500m"  # one R process per pod: about one core at most
    worker_memory: str = "512Mi"  # memory request and limit of each R worker pod
    max_scale: int = 4  # HPA: at most workers x max_scale pods per R model
    # Longest an R model (Plumber pod, or rpy2 inside the gateway pod) takes to load: each pod's
    # startupProbe allows this long before liveness applies, so a slow load is not killed midway.
    load_timeout_s: int = 300


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    store: StoreSettings
    models: dict[str, ModelSettings]
    base_dir: Path  # directory of the config file; relative paths resolve here
    config_path: Path | None = None
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)

    @property
    def store_path(self) -> Path:
        return self.resolve(self.store.path)

    @property
    def run_dir(self) -> Path:
        return self.resolve(self.server.run_dir)

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read, override and validate the config. Raises ConfigError naming the bad key."""
    env = dict(os.environ if env is None else env)
    raw: dict[str, Any] = {}
    config_path: Path | None = None
    if path is not None:
        config_path = Path(path).resolve()
        try:
            raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {config_path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: {exc}") from None
    _apply_env(raw, env)
    base_dir = config_path.parent if config_path else Path.cwd()
    return settings_from_dict(raw, base_dir=base_dir, config_path=config_path)


def settings_from_dict(
    raw: dict[str, Any], *, base_dir: Path, config_path: Path | None = None
) -> Settings:
    """Build Settings from parsed TOML; unknown keys and bad values are ConfigErrors."""
    unknown = set(raw) - {"server", "store", "models", "kubernetes"}
    if unknown:
        raise ConfigError(
            f"unknown config section {sorted(unknown)[0]!r}; known: server, store, models, kubernetes"
        )
    server = _build(ServerSettings, raw.get("server", {}), "server")
    store = _build(StoreSettings, raw.get("store", {}), "store")
    kubernetes = _build(KubernetesSettings, raw.get("kubernetes", {}), "kubernetes")
    models: dict[str, ModelSettings] = {}
    for name, table in raw.get("models", {}).items():
        if not MODEL_NAME.match(name):
            raise ConfigError(
                f"models.{name}: model names must be lower-case letters, digits and '_', "
                "starting with a letter"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"models.{name} must be a table, e.g. [models.{name}]")
        table = dict(table)
        batch = _build(BatchSettings, table.pop("batch", {}), f"models.{name}.batch")
        if isinstance(table.get("workers"), dict):  # {min, max, idle_s}: a pool that follows the load
            table["workers"] = _build(PoolScale, dict(table["workers"]), f"models.{name}.workers")
        log = _build(PredictionLogSettings, table.pop("log_predictions", {}), f"models.{name}.log_predictions")
        models[name] = _build(ModelSettings, {**table, "name": name, "batch": batch, "log_predictions": log},
                              f"models.{name}")
    settings = Settings(server, store, models, base_dir=base_dir, config_path=config_path, kubernetes=kubernetes)
    _validate(settings)
    return settings


def _build(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a table")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key; known keys: {', '.join(sorted(known))}")
        values[key] = _coerce(value, hints[key], f"{where}.{key}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check a value against a field type; strings from the environment are converted."""
    args = get_args(hint)
    if hint in (dict[str, str], dict[str, int]):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, e.g. {{champion = \"3\"}}, got {value!r}")
        item = get_args(hint)[1]
        return {str(k): _coerce(v, item, f"{where}.{k}") for k, v in value.items()}
    if hint == tuple[str, ...]:
        if isinstance(value, str):  # from the environment: comma-separated
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    if hint is bool:
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0"}:
            return value.lower() in {"true", "1"}
        if isinstance(value, bool):
            return value
    elif hint is int and not isinstance(value, bool) and not isinstance(value, float):
        try:
            return int(value)  # an env string like "8080"; "80.9" is refused, never truncated
        except (TypeError, ValueError):
            pass
    elif hint is float and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    elif hint is str and isinstance(value, str):
        return value
    elif args and all(isinstance(a, str) for a in args):  # Literal
        if value in args:
            return value
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(args)}")
    elif type(None) in args:  # Optional[str], Optional[int]
        inner = next(a for a in args if a is not type(None))
        return None if value in (None, "") else _coerce(value, inner, where)
    elif isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, hint):
        return value
    elif int in args and any(dataclasses.is_dataclass(a) for a in args):  # int | PoolScale
        if any(isinstance(value, a) for a in args if isinstance(a, type) and dataclasses.is_dataclass(a)):
            return value
        return _coerce(value, int, where)
    raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _apply_env(raw: dict[str, Any], env: dict[str, str]) -> None:
    for key, value in env.items():
        if not key.startswith("GATEWAY_") or "__" not in key:
            continue
        parts = [p.lower() for p in key.removeprefix("GATEWAY_").split("__")]
        target = raw
        for depth, part in enumerate(parts[:-1]):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(f"{key}: {where} is a value, not a section; drop the part after it")
        target[parts[-1]] = value


def default_model(settings: Settings) -> str | None:
    """The model MLflow's unprefixed routes serve: server.default_model, else the only model."""
    if settings.server.default_model:
        return settings.server.default_model
    return next(iter(settings.models)) if len(settings.models) == 1 else None


def _validate(settings: Settings) -> None:
    server = settings.server
    if not 1 <= server.port <= 65535:
        raise ConfigError(f"server.port: {server.port} is not a TCP port")
    if server.workers < 1 or server.threads < 1:
        raise ConfigError("server.workers and server.threads must be at least 1")
    if server.log_max_bytes < 1024 or server.log_backups < 0:
        raise ConfigError("server.log_max_bytes must be at least 1024 and server.log_backups at least 0")
    if not 0 <= server.log_flush_ms <= 10000:
        raise ConfigError("server.log_flush_ms must be between 0 and 10000 (0: a write per line); "
                          f"got {server.log_flush_ms:g}")
    if server.body_limit_bytes < 1024:
        raise ConfigError("server.body_limit_bytes must be at least 1024")
    if not 0.5 <= server.status_interval_s <= 60:
        raise ConfigError(f"server.status_interval_s must be between 0.5 and 60 s; got {server.status_interval_s:g}")
    if server.max_requests_per_address < 0:
        raise ConfigError("server.max_requests_per_address must be >= 0 (0 turns the limit off)")
    if server.max_rows < 1 or server.max_worker_rss_mb < 0:
        raise ConfigError("server.max_rows must be at least 1 and server.max_worker_rss_mb at least 0 (0: off)")
    if server.jobs_per_key < 1:
        raise ConfigError(f"server.jobs_per_key must be at least 1; got {server.jobs_per_key}")
    if server.jobs_keep_s < 0:
        raise ConfigError("server.jobs_keep_s must be >= 0 (0 keeps finished jobs until DELETE); "
                          f"got {server.jobs_keep_s:g}")
    if server.rate_limit_rps < 0 or server.rate_limit_burst < 0:
        raise ConfigError("server.rate_limit_rps and server.rate_limit_burst must be >= 0 (0 turns limiting off)")
    if server.default_model and server.default_model not in settings.models:
        raise ConfigError(f"server.default_model: {server.default_model!r} is not a configured model; "
                          f"models: {', '.join(sorted(settings.models)) or 'none'}")
    if server.cluster_secret_file:
        cluster_secret(settings)  # readable and well-formed, or a ConfigError now
    cluster_tls(settings)  # all three files or none, each readable, or a ConfigError now
    if not 0 < server.host_probe_interval_s <= 10 or server.host_probe_timeout_s <= 0:
        raise ConfigError("server.host_probe_interval_s must be in (0, 10] and server.host_probe_timeout_s > 0")
    if settings.kubernetes.load_timeout_s < 1:
        raise ConfigError("kubernetes.load_timeout_s must be at least 1")
    for model in settings.models.values():
        where = f"models.{model.name}"
        if model.scale is not None:
            _validate_scale(model)
        elif model.pool_size < 0 or (model.pool_size == 0 and not model.hosts):
            raise ConfigError(f"{where}.workers must be at least 1 (or 0 with remote hosts)")
        for host in model.hosts:
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ConfigError(f"{where}.hosts: {host!r} is not host:port")
        if any(weight < 0 for weight in model.traffic.values()) or (model.traffic and not sum(model.traffic.values())):
            raise ConfigError(f"{where}.traffic: weights are whole numbers >= 0 with a positive sum")
        if model.max_in_flight < 0:
            raise ConfigError(f"{where}.max_in_flight must be >= 0 (0: no cap)")
        size, wait = model.batch.max_size, model.batch.max_wait_ms
        if (size is not None and size < 1) or (wait is not None and wait < 0):
            raise ConfigError(f"{where}.batch: max_size >= 1 and max_wait_ms >= 0")
        # Timeouts are ordered so the innermost fires first and the client gets a clean 504:
        # model timeout (the gateway's 504) < Gunicorn timeout < public NGINX read timeout.
        if model.timeout_s + 10 > server.timeout_s:
            raise ConfigError(
                f"{where}.timeout_s = {model.timeout_s} must be at least 10 s below "
                f"server.timeout_s = {server.timeout_s}; raise server.timeout_s"
            )
        if model.scale is not None and model.scale.min == 0 and \
                model.cold_start_s + model.timeout_s + 10 > server.timeout_s:
            raise ConfigError(
                f"{where}: cold_start_s = {model.cold_start_s} plus timeout_s = {model.timeout_s} must be "
                f"at least 10 s below server.timeout_s = {server.timeout_s} (a first request waits for "
                "both); lower cold_start_s or raise server.timeout_s"
            )
        log = model.log_predictions
        if not 0.0 <= log.sample <= 1.0:
            raise ConfigError(f"{where}.log_predictions.sample = {log.sample} must be between 0 and 1")
        if log.sink != "file" and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", log.sink):
            raise ConfigError(f"{where}.log_predictions.sink = {log.sink!r} must be \"file\" or an http(s):// URL")
        if model.script is not None and not settings.resolve(model.script).exists():  # a file or its folder
            raise ConfigError(f"{where}.script: {settings.resolve(model.script)} does not exist")


def _validate_scale(model: ModelSettings) -> None:
    """A load-following pool: 0 <= min <= max, max >= 1, and idle_s and cold_start_s above 0."""
    scale, where = model.scale, f"models.{model.name}.workers"
    assert scale is not None
    if not 0 <= scale.min <= scale.max or scale.max < 1:
        raise ConfigError(f"{where}: min = {scale.min}, max = {scale.max}; need 0 <= min <= max and max >= 1")
    if scale.idle_s <= 0:
        raise ConfigError(f"{where}.idle_s must be above 0 (seconds a worker may stay unneeded), got {scale.idle_s}")
    if model.cold_start_s <= 0:
        raise ConfigError(f"models.{model.name}.cold_start_s must be above 0, got {model.cold_start_s}")


def cluster_secret(settings: Settings) -> str:
    """The shared secret between the gateway and its worker hosts ("" when none is configured)."""
    if not settings.server.cluster_secret_file:
        return ""
    path = settings.resolve(settings.server.cluster_secret_file)
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"server.cluster_secret_file: cannot read {path} ({exc.strerror})") from None
    if not re.fullmatch(r"[A-Za-z0-9_-]{32,256}", secret):
        raise ConfigError(
            f"server.cluster_secret_file: {path} must hold 32-256 characters of [A-Za-z0-9_-], e.g. "
            "from `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return secret


@dataclass(frozen=True)
class ClusterTls:
    """The files of mutual TLS between hosts: the CA both sides trust, this host's pair."""

    ca: Path
    cert: Path
    key: Path


def cluster_tls(settings: Settings) -> ClusterTls | None:
    """The cluster's TLS files (None when mutual TLS is off); ConfigError names a missing one."""
    server = settings.server
    names = {"cluster_ca_file": server.cluster_ca_file, "cluster_cert_file": server.cluster_cert_file,
             "cluster_key_file": server.cluster_key_file}
    if not any(names.values()):
        return None
    missing = [key for key, value in names.items() if not value]
    if missing:
        raise ConfigError(f"server.{missing[0]} is empty: mutual TLS needs cluster_ca_file, cluster_cert_file and "
                          "cluster_key_file together (`gateway certs init` / `gateway certs issue HOST`)")
    paths = {key: settings.resolve(value) for key, value in names.items()}
    for key, path in paths.items():
        if not path.is_file():
            raise ConfigError(f"server.{key}: {path} does not exist (make it with `gateway certs`)")
    return ClusterTls(paths["cluster_ca_file"], paths["cluster_cert_file"], paths["cluster_key_file"])
