"""Bulk jobs on disk: one directory per job under <run_dir>/jobs, every file 0600.

The gateway writes a job (`job.json`, then its body, which makes it visible to the runner) and
a `cancel` marker; the runner (gateway/job_runner.py) writes `state.json` and one result file
per finished chunk. Each file has one writer and is replaced atomically, so a reader sees the
old or the new content whole, and a runner killed at any moment resumes from `state.json`: a
chunk counts as done only once its result file is in place. No Flask here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.codecs.stream import NDJSON, predictions_encoder
from gateway.errors import JobNotFinished, NotFound, TooManyRequests
from gateway.private_files import FILE_MODE, private_dir, write_private

JOBS_DIR = "jobs"
ACTIVE = ("queued", "running")
FINISHED = ("done", "failed")
_ID = re.compile(r"^[0-9a-f]{16}$")
_PIECE = 1024 * 1024
UPLOAD_STALL_S = 600.0  # a job body that has not grown for this long was cut off; the runner removes it


@dataclass(frozen=True)
class JobSpec:
    """What the client asked for, fixed at creation (`job.json`)."""

    id: str
    owner: str  # the API key id ("" without keys)
    model: str
    version: str  # chosen once, so every row is scored by the same version
    content_type: str
    params: dict[str, Any]
    chunk_rows: int
    created_at: float


@dataclass
class JobState:
    """Where the runner is (`state.json`); absent until the runner first picks the job up."""

    status: str = "queued"  # queued, running, done, failed, cancelled
    rows_total: int | None = None
    rows_done: int = 0
    chunks_done: int = 0
    error: dict[str, Any] | None = None
    updated_at: float = field(default_factory=time.time)


class JobStore:
    """The jobs of one stack."""

    def __init__(self, run_dir: str | Path) -> None:
        self.root = Path(run_dir) / JOBS_DIR

    # The gateway's side.

    def create(self, spec: dict[str, Any], body: IO[bytes], limit: int) -> JobSpec:
        """Spool `body` and publish the job; raises TooManyRequests when the owner already has
        `limit` jobs queued or running."""
        owner = spec["owner"]
        job = JobSpec(id=secrets.token_hex(8), created_at=time.time(), **spec)
        directory = self.root / job.id
        with self._locked():  # count and claim at once: two racing POSTs cannot both take the last place
            active = sum(1 for other in self._specs() if other.owner == owner and self._counts(other))
            if active >= limit:
                who = f"API key '{owner}'" if owner else "this gateway (no API keys)"
                raise TooManyRequests(f"{who} already has {active} jobs queued or running (server.jobs_per_key "
                                      f"= {limit}); wait for one to finish or cancel one", model=job.model)
            private_dir(directory)
            write_private(directory / "job.json", orjson.dumps(asdict(job)))
        try:
            partial = directory / "body.part"
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
            with os.fdopen(fd, "wb") as out:
                while piece := body.read(_PIECE):
                    out.write(piece)
            os.replace(partial, directory / "body")  # now the runner may take it
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return job

    def status(self, job_id: str, owner: str) -> dict[str, Any]:
        """The job as GET /jobs/<id> shows it."""
        job = self.get(job_id, owner)
        state = self.state(job)
        shown = {"id": job.id, "model": job.model, "version": job.version, "status": state.status,
                 "rows_done": state.rows_done, "rows_total": state.rows_total, "created_at": job.created_at,
                 "updated_at": state.updated_at}
        if state.error is not None:
            shown["error"] = state.error
        return shown

    def cancel(self, job_id: str, owner: str) -> None:
        """Ask the runner to stop the job and delete it (it answers 404 from then on)."""
        job = self.get(job_id, owner)
        write_private(self.root / job.id / "cancel", b"")

    def result(self, job_id: str, owner: str, accept: str) -> tuple[str, Iterator[bytes]]:
        """(media type, pieces) of a done job's predictions, in row order, one chunk in memory
        at a time; raises JobNotFinished before that."""
        job = self.get(job_id, owner)
        state = self.state(job)
        if state.status != "done":
            raise JobNotFinished(f"job {job.id} is {state.status} ({state.rows_done} of "
                                 f"{state.rows_total if state.rows_total is not None else '?'} rows); "
                                 "poll GET /jobs/<id> until its status is done", model=job.model)
        files = [self.chunk_path(job, i) for i in range(state.chunks_done)]
        encoder = predictions_encoder(accept, job.model)
        if encoder.media_type == NDJSON:
            return NDJSON, _file_pieces(files)

        def pieces() -> Iterator[bytes]:
            for path in files:
                yield encoder.rows([orjson.loads(line)["prediction"] for line in path.read_bytes().splitlines()])
            yield encoder.end()

        return encoder.media_type, pieces()

    def get(self, job_id: str, owner: str) -> JobSpec:
        """The job, if it exists and `owner` created it: another key's job is a 404 too."""
        job = self._spec(job_id) if _ID.match(job_id) else None
        if job is None or job.owner != owner or (self.root / job.id / "cancel").exists():
            raise NotFound(f"no job {job_id!r}; jobs are listed to the API key that created them")
        return job

    # The runner's side.

    def _counts(self, job: JobSpec) -> bool:
        """Whether a job takes one of its owner's places: queued or running, and its body in or
        still arriving (an upload cut off by a killed worker stops counting)."""
        return self.state(job).status in ACTIVE and not self.abandoned(job)

    def abandoned(self, job: JobSpec) -> bool:
        """An upload that stopped: no body, and the partial one untouched for UPLOAD_STALL_S."""
        if self.body_path(job).exists():
            return False
        try:
            return time.time() - (self.root / job.id / "body.part").stat().st_mtime > UPLOAD_STALL_S
        except FileNotFoundError:
            return time.time() - job.created_at > UPLOAD_STALL_S

    def abandoned_jobs(self) -> list[JobSpec]:
        return [job for job in self._specs() if self.abandoned(job)]

    def pending(self) -> list[JobSpec]:
        """Jobs whose body is in, not finished yet, oldest first, cancelled ones included (the
        runner removes them)."""
        jobs = [job for job in self._specs() if self.body_path(job).exists()
                and (self.state(job).status in ACTIVE or self.cancelled(job))]
        return sorted(jobs, key=lambda job: job.created_at)

    def expired(self, keep_s: float, now: float) -> list[JobSpec]:
        """Finished jobs (done or failed) whose last change is more than keep_s old; none with 0."""
        if keep_s <= 0:
            return []
        return [job for job in self._specs() if (state := self.state(job)).status in FINISHED
                and now - state.updated_at > keep_s]

    def cancelled(self, job: JobSpec) -> bool:
        return (self.root / job.id / "cancel").exists()

    def remove(self, job: JobSpec) -> None:
        shutil.rmtree(self.root / job.id, ignore_errors=True)

    def body_path(self, job: JobSpec) -> Path:
        return self.root / job.id / "body"

    def chunk_path(self, job: JobSpec, index: int) -> Path:
        return self.root / job.id / f"chunk-{index:08d}.ndjson"

    def state(self, job: JobSpec) -> JobState:
        try:
            return JobState(**orjson.loads((self.root / job.id / "state.json").read_bytes()))
        except FileNotFoundError:
            return JobState()

    def save_state(self, job: JobSpec, state: JobState) -> None:
        state.updated_at = time.time()
        write_private(self.root / job.id / "state.json", orjson.dumps(asdict(state)))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock over the store, shared by every Gunicorn worker and thread."""
        fd = os.open(private_dir(self.root) / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _specs(self) -> Iterator[JobSpec]:
        if not self.root.is_dir():
            return
        for entry in os.scandir(self.root):
            job = self._spec(entry.name)
            if job is not None:
                yield job

    def _spec(self, job_id: str) -> JobSpec | None:
        try:
            return JobSpec(**orjson.loads((self.root / job_id / "job.json").read_bytes()))
        except (FileNotFoundError, NotADirectoryError):
            return None  # not a job, or one still being spooled


def _file_pieces(files: list[Path]) -> Iterator[bytes]:
    for path in files:
        with path.open("rb") as handle:
            while piece := handle.read(_PIECE):
                yield piece
