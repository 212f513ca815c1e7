"""The job runner: a supervisord program that scores bulk jobs (gateway/jobs.py) chunk by chunk
through the same backends as the API, at low priority.

Priority: it is one process, niced, scoring one chunk of one job at a time. An R pool gives it
at most one worker at a time, a Python or rpy2 model runs in this process (its own copy,
loaded here when the first job comes) at a lower CPU priority than Gunicorn's, and no Gunicorn
thread or bulkhead slot is ever taken: interactive predicts keep every slot they had.

Resuming: a chunk's predictions are written (atomically) before `state.json` counts the chunk, so
a runner killed at any point starts the job again after its last counted chunk; a result file
written but not yet counted is written again, whole. No row is scored twice into the result.

Memory: an idle runner imports no pyarrow, pandas, NumPy or backend (tests/unit/
test_entry_imports.py): those come with the first job, so a stack that never sees one does not
carry them in one more process.

Run by supervisord as `python -m gateway.job_runner` with GATEWAY_CONFIG and GATEWAY_PLAN.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.codecs import decode_request
from gateway.codecs.arrow import ARROW
from gateway.codecs.stream import BULK_TYPES, CSV, job_tables, ndjson_predictions, shift_rows
from gateway.codecs.table import Table
from gateway.errors import BadGateway, GatewayError, GatewayTimeout, Unavailable
from gateway.jobs import JobSpec, JobState, JobStore
from gateway.private_files import write_private
from gateway.settings import Settings, load_settings
from gateway.topology import Plan

if TYPE_CHECKING:
    from gateway.registry import ServedModel
    from gateway.service import PredictionService

log = logging.getLogger("gateway.job_runner")
NICENESS = 10  # below Gunicorn's workers, which run at 0
POLL_S = 0.5  # how often an idle runner looks for new jobs
TRANSIENT = (Unavailable, BadGateway, GatewayTimeout)  # a busy or restarting backend: wait, retry
RETRIES = 6
SWEEP_S = 60.0  # how often finished jobs are checked against server.jobs_keep_s


class Runner:
    """Scores the jobs of one store through one service, made by `make_service` when the first
    job comes: an idle runner holds no models (and a stack that never sees a job never loads
    them twice)."""

    def __init__(self, make_service: Callable[[], PredictionService], store: JobStore, keep_s: float = 0.0) -> None:
        self._make_service = make_service
        self._service: PredictionService | None = None
        self.store = store
        self.keep_s = keep_s  # server.jobs_keep_s
        self._swept = float("-inf")

    @property
    def service(self) -> PredictionService:
        if self._service is None:
            self._service = self._make_service()
        return self._service

    def run_once(self) -> bool:
        """Work on the oldest unfinished job (or remove a cancelled one); False when idle."""
        for job in self.store.abandoned_jobs():
            self.store.remove(job)
        self.remove_expired()
        for job in self.store.pending():
            if self.store.cancelled(job):
                self.store.remove(job)
                continue
            self.run(job)
            return True
        return False

    def remove_expired(self, now: float | None = None) -> None:
        """Finished jobs past server.jobs_keep_s go, looked for at most once a SWEEP_S."""
        now = time.time() if now is None else now
        if now - self._swept < SWEEP_S:
            return
        self._swept = now
        for job in self.store.expired(self.keep_s, now):
            log.info("job %s (model %s): removed, finished more than %g s ago (server.jobs_keep_s)",
                     job.id, job.model, self.keep_s)
            self.store.remove(job)

    def run(self, job: JobSpec) -> None:
        """Score `job` from its last counted chunk to the end, or until it is cancelled."""
        state = self.store.state(job)
        try:
            if state.rows_total is None:
                state.rows_total = count_rows(self.store.body_path(job), job.content_type)
            state.status = "running"
            self.store.save_state(job, state)
            if state.chunks_done:
                log.info("job %s: resuming after chunk %d (%d rows done)", job.id, state.chunks_done, state.rows_done)
            served = self.service.registry.get(job.model)
            inputs = served.backend(job.version).meta.inputs
            with self.store.body_path(job).open("rb") as body:
                chunks = job_tables(body, job.content_type, job.chunk_rows, inputs, job.model)
                for index, (first, table, params) in enumerate(chunks):
                    if index < state.chunks_done:
                        continue
                    if self.store.cancelled(job):
                        self.store.remove(job)
                        return
                    predictions = self._score(served, job, first, table, {**job.params, **params})
                    write_private(self.store.chunk_path(job, index), ndjson_predictions(predictions))
                    state.chunks_done, state.rows_done = index + 1, state.rows_done + table.n_rows
                    self.store.save_state(job, state)
        except GatewayError as error:
            log.warning("job %s (model %s) failed: %s", job.id, job.model, error.detail)
            self._fail(job, state, error)
            return
        except Exception as exc:  # a bug or a full disk must fail the job, not crash-loop the runner on it
            log.exception("job %s (model %s) failed", job.id, job.model)
            self._fail(job, state, GatewayError(f"the job runner failed: {type(exc).__name__}: {exc}", model=job.model))
            return
        state.status = "done"
        self.store.save_state(job, state)

    def _fail(self, job: JobSpec, state: JobState, error: GatewayError) -> None:
        state.status, state.error = "failed", error.to_problem()
        self.store.save_state(job, state)

    def _score(self, served: ServedModel, job: JobSpec, first: int, table: Table, params: dict[str, Any]) -> list[Any]:
        for attempt in range(RETRIES):
            try:
                return self.service.predict_table(served, job.version, table, params).predictions
            except TRANSIENT as error:
                if attempt == RETRIES - 1:
                    shift_rows(error, first - 1)
                    raise
                log.info("job %s: %s; retrying", job.id, error.detail)
                time.sleep(2**attempt)
            except GatewayError as error:
                shift_rows(error, first - 1)
                raise
        raise AssertionError("unreachable")  # pragma: no cover


def count_rows(path: Path, content_type: str) -> int:
    """The rows of a spooled body, read once before scoring so progress has a total."""
    with path.open("rb") as body:
        if content_type == ARROW:
            import pyarrow as pa

            try:
                return sum(batch.num_rows for batch in pa.ipc.open_stream(body))
            except (pa.ArrowInvalid, OSError):
                return 0  # the scoring pass names the problem
        if content_type == CSV:
            reader = csv.reader(io.TextIOWrapper(body, encoding="utf-8-sig", errors="replace", newline=""))
            try:
                return max(0, sum(1 for row in reader if row) - 1)
            except csv.Error:
                return 0
        if content_type in BULK_TYPES:
            return sum(1 for line in body if line.strip())
        try:
            return decode_request(body.read(), content_type).table.n_rows
        except GatewayError:
            return 0


def load_service(settings: Settings, plan: Plan) -> PredictionService:
    """The models, loaded as a Gunicorn worker loads them (a model that fails is only not ready);
    imported here so an idle runner never imports the backends."""
    from gateway.registry import build_registry
    from gateway.service import PredictionService

    log.info("loading the models for the first job")
    return PredictionService(build_registry(settings, plan, isolate=True), settings)


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings(os.environ.get("GATEWAY_CONFIG"))
    plan = Plan.load(Path(os.environ["GATEWAY_PLAN"]))
    os.nice(max(0, NICENESS - os.nice(0)))  # the rendered command already starts it niced
    runner = Runner(lambda: load_service(settings, plan), JobStore(plan.run_dir), settings.server.jobs_keep_s)
    log.info("job runner ready (pid %d, nice %d)", os.getpid(), NICENESS)
    while True:
        if not runner.run_once():
            time.sleep(POLL_S)


if __name__ == "__main__":
    main()
