"""R models in-process: one embedded R per Gunicorn worker process, reached through rpy2.

No second translation lives here: the request goes to R as the exact wire-format JSON the
Plumber workers receive, `gatewayr::handle_predict` decodes, validates and predicts with the
same R code, and its `list(status, body)` is mapped by the same function as a worker's HTTP
reply (gateway.backends.r_reply). So both R backends answer identically, bit for bit.

R is not thread-safe and Gunicorn's gthread workers are: every call into R (and every release
of an R object) happens under one process-wide lock. R starts on first load, in the worker
process after the fork, never at import and never in the Gunicorn master.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from gateway import tracing
from gateway.backends.base import Backend, BatchDefaults, Health
from gateway.backends.kinds import BackendKind, BuildContext, Resolved
from gateway.backends.r_reply import predictions_from_reply
from gateway.codecs import Table, decode_wire_reply, encode_binary_request, encode_wire_request
from gateway.errors import ConfigError, GatewayTimeout
from gateway.integrity import file_problem
from gateway.meta import ModelMeta
from gateway.rlib import library_dir
from gateway.settings import ModelSettings

RPY2_REQUIREMENT = "rpy2>=3.5.17,<3.6"
SOURCE = "the embedded R"
# Two R closures, defined once per process. Each catches R's errors itself, so Python gets R's
# condition message rather than a console transcript. handle_predict's time limit (the one the
# Plumber workers use) makes a slow model stop itself instead of holding the lock for everyone.
_R_HELPERS = """
list(
  load = function(dir) {
    tryCatch(list(ok = TRUE, loaded = gatewayr::load_model(dir)),
             error = function(e) list(ok = FALSE, message = conditionMessage(e)))
  },
  predict = function(loaded, body, timeout_s) {
    out <- tryCatch(gatewayr::handle_predict(loaded, body, timeout_s), error = function(e) {
      error <- list(error = list(code = "internal", message = conditionMessage(e)))
      list(status = 500L, body = jsonlite::toJSON(error, auto_unbox = TRUE))
    })
    timings <- if (is.null(out$timings)) "" else as.character(out$timings)
    body <- if (is.raw(out$body)) out$body else as.character(out$body)  # raw: the binary wire's reply
    list(status = as.integer(out$status), body = body, timings = timings)
  }
)
"""


def missing_requirements() -> str | None:
    """What to install before rpy2 can serve, or None; checked without starting R."""
    if importlib.util.find_spec("rpy2") is None:
        return (
            f"the Python package rpy2 is not installed; install it with "
            f"`RPY2_CFFI_MODE=ABI pip install '{RPY2_REQUIREMENT}'` (or `make deps`)"
        )
    if not os.environ.get("R_HOME") and shutil.which("R") is None:
        return "R is not installed; install it with `apt-get install --no-install-recommends r-base-core`"
    return None


class EmbeddedR:
    """This process's one R: started on first use, every call into it under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._pid: int | None = None
        self._helpers: Any = None
        self._ri: Any = None

    def start(self) -> None:
        """Start R here (idempotent). Raises ConfigError saying what to install when it cannot."""
        with self.lock:
            if self._pid == os.getpid():
                return
            if self._pid is not None:
                raise ConfigError("R was started before a fork; an embedded R cannot cross a fork "
                                  "(keep Gunicorn's preload_app = False)")
            problem = missing_requirements()
            if problem is not None:
                raise ConfigError(f"backend \"rpy2\": {problem}")
            self._boot()
            self._pid = os.getpid()

    def _boot(self) -> None:
        rlib = str(library_dir())  # in a stack: GATEWAY_R_LIBRARY, set by the rendered config
        existing = os.environ.get("R_LIBS")
        # Read by R once, when it starts: gatewayr lives in the gateway's R library.
        os.environ["R_LIBS"] = rlib if not existing else f"{rlib}{os.pathsep}{existing}"
        on_main = threading.current_thread() is threading.main_thread()
        sigint = signal.getsignal(signal.SIGINT) if on_main else None
        # rpy2 prepends R's library path (/usr/lib/x86_64-linux-gnu among them) to this process's
        # LD_LIBRARY_PATH. Too late to matter here, but every child would inherit it and load the
        # system's libpython instead of its own; put it back once R is up.
        ld_library_path = os.environ.get("LD_LIBRARY_PATH")
        try:
            import rpy2.rinterface as ri

            with warnings.catch_warnings():
                # rpy2 warns that Ctrl-C cannot reach R when started off the main thread;
                # a server never sends R a Ctrl-C.
                warnings.filterwarnings("ignore", message="R is not initialized by the main thread")
                ri.initr_simple()
            self._helpers = ri.evalr(_R_HELPERS)
        except Exception as exc:
            raise ConfigError(f"backend \"rpy2\": R did not start ({type(exc).__name__}: {exc})") from exc
        finally:
            if on_main and sigint is not None:
                signal.signal(signal.SIGINT, sigint)  # rpy2 takes SIGINT; Gunicorn owns it
            if ld_library_path is None:
                os.environ.pop("LD_LIBRARY_PATH", None)
            else:
                os.environ["LD_LIBRARY_PATH"] = ld_library_path
        self._ri = ri

    def load(self, directory: Path, where: str) -> Any:
        """gatewayr::load_model(directory); R's refusal becomes a ConfigError in R's words."""
        with self.lock:
            out = self._helpers[0](self._ri.StrSexpVector([str(directory)]))
            if not out[0][0]:
                raise ConfigError(f"{where}: R could not load {directory}: {out[1][0]}")
            return out[1]

    def predict(self, loaded: Any, body: str | bytes, timeout_s: float) -> tuple[int, bytes, str, bool]:
        """handle_predict(loaded, body) → (status, body, R's phase timings, whether the body is the
        binary wire's reply). `body` is JSON text, or bytes of the binary wire, which reach R as
        one raw vector. Call with self.lock held."""
        ri = self._ri
        try:
            sent = ri.ByteSexpVector(body) if isinstance(body, bytes) else ri.StrSexpVector([body])
            out = self._helpers[1](loaded, sent, ri.FloatSexpVector([timeout_s]))
            status, timings = int(out[0][0]), str(out[2][0])
            binary = out[1].typeof == ri.RTYPES.RAWSXP
            content = _raw_bytes(out[1]) if binary else str(out[1][0]).encode("utf-8")
            del out, sent  # release the R objects while the lock is still held
            return status, content, timings, binary
        except ri.embedded.RRuntimeError as exc:  # an error R raised outside the helper's tryCatch
            return 500, _error_json("internal", str(exc).strip()), "", False


def _raw_bytes(vector: Any) -> bytes:
    """An R raw vector's bytes in one copy (iterating it from Python costs a call per byte)."""
    from rpy2.rinterface_lib import openrlib

    return bytes(openrlib.ffi.buffer(openrlib.rlib.RAW(vector.__sexp__._cdata), len(vector)))


def _error_json(code: str, message: str) -> bytes:
    import orjson

    return orjson.dumps({"error": {"code": code, "message": message}})


EMBEDDED_R = EmbeddedR()  # no R yet: it starts on the first load, in the process that serves


# As for an R pool: one R call for 256 rows costs about what one row does, and a queued request
# waits about one R call anyway, so the wait cap only guards against a call that hangs.
DEFAULT_BATCH_ROWS = 256
DEFAULT_BATCH_WAIT_MS = 50.0


class Rpy2Backend(Backend):
    kind = "rpy2"

    def __init__(self, meta: ModelMeta, version_dir: Path, model: ModelSettings,
                 r: EmbeddedR | None = None) -> None:
        super().__init__(meta)
        self.version_dir = version_dir
        self.model = model
        self._r = r or EMBEDDED_R
        self._loaded: Any = None

    def check(self) -> None:
        """model.rds is the saved one; gatewayr::load_model checks it again in R."""
        problem = file_problem(self.version_dir / self.meta.artefact, self.meta.sha256)
        if problem is not None:
            raise ConfigError(f"model '{self.model.name}' version {self.meta.version}: {problem}")

    def load(self) -> None:
        self._r.start()
        where = f"model '{self.model.name}' version {self.meta.version} (backend \"rpy2\")"
        self._loaded = self._r.load(self.version_dir, where)

    def predict(self, table: Table, params: dict[str, Any]) -> list[Any]:
        name, timeout_s = self.model.name, self.model.timeout_s
        started = time.monotonic()  # the budget covers encoding, R's decoding and validation too
        # The binary wire when the table fits it (R reads each column in one step), else JSON.
        body: str | bytes | None = encode_binary_request(table, self.meta.inputs, params, self.model.name)
        if body is None:
            body = encode_wire_request(table, self.meta.inputs, params, self.model.name).decode("utf-8")
        if not self._r.lock.acquire(timeout=max(0.0, timeout_s - (time.monotonic() - started))):
            raise GatewayTimeout(
                f"model '{name}' did not answer within its timeout of {timeout_s:g} s "
                "(the embedded R of this worker was busy with other requests)", model=name,
            )
        try:  # R gets what is left of the budget after waiting for the lock
            remaining = max(0.01, timeout_s - (time.monotonic() - started))
            with tracing.r_call("rpy2") as r_side:  # R's phases as child spans (gateway/tracing.py)
                status, content, r_side[tracing.R_TIMINGS_HEADER], binary = self._r.predict(
                    self._loaded, body, remaining)
        finally:
            self._r.lock.release()
        # R answers 504 with what was left of the budget; the caller hears the configured timeout.
        if status == 504 or (status != 200 and time.monotonic() - started >= timeout_s):
            raise GatewayTimeout(f"model '{name}' did not answer within its timeout of {timeout_s:g} s",
                                 model=name)
        return predictions_from_reply(
            status, content, lambda doc: decode_wire_reply(doc, table.n_rows), model=name, source=SOURCE,
            binary=binary,
        )

    def batching(self) -> BatchDefaults:
        """On: R's predict is vectorised and this worker's one R runs one call at a time, so
        requests waiting for the R lock are better off sharing the next call (one slot)."""
        return BatchDefaults(DEFAULT_BATCH_ROWS, DEFAULT_BATCH_WAIT_MS, slots=1)

    def health(self) -> Health:
        if self._loaded is None:
            return Health(ready=False, detail="the embedded R has not loaded the model")
        return Health(ready=True)

    def unload(self) -> None:
        with self._r.lock:  # dropping the last reference releases the R object: under the lock
            self._loaded = None



def _build(model: ModelSettings, ctx: BuildContext) -> Resolved:
    """Checked here without starting R (`gateway up` runs this in the CLI): R starts on load."""
    problem = missing_requirements()
    if problem is not None:
        raise ConfigError(f"models.{model.name}: backend = \"rpy2\" needs R in-process, but {problem}")
    current = ctx.current(model)

    def make(version: str) -> Backend:
        meta = ctx.store.read_meta(model.name, version)
        if meta.language != "r" or meta.format != "rds":
            raise ConfigError(
                f"models.{model.name}: version {version} is a {meta.language} {meta.format} model; "
                "backend = \"rpy2\" serves saved R models (model.rds); use \"python\" or \"plumber\""
            )
        return Rpy2Backend(meta, ctx.store.version_dir(model.name, version), model)

    make(current)  # refuse a wrong artefact at start-up, not on the first request
    return Resolved(current, ctx.store.versions(model.name), make)


KIND = BackendKind(
    name="rpy2", language="r", summary="saved R models (model.rds) in an R embedded in each Gunicorn worker",
    build=_build,
)
