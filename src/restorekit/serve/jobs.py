"""Jobs and the queue that runs them: a bounded number of worker threads, a bounded number of
waiting jobs, progress and cancel, finished jobs' folders removed after a time to live, and a
shutdown that lets running jobs finish (or stop, for trainings) and fails the waiting ones."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from restorekit.errors import RestorekitError

State = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: tuple[State, ...] = ("done", "failed", "cancelled")


class QueueFull(RestorekitError):
    """Too many jobs wait already; the client should retry later."""


class JobCancelled(Exception):
    """Raised inside a job's work when its cancel was asked."""


@dataclass
class Job:
    """One request's work. ``files``: the uploaded names, in order; ``results``: per file,
    ``{"output": name, "warnings": [...], "psnr": dB}`` or ``{"error": message}``."""

    kind: Literal["apply", "train"]
    folder: Path
    files: list[str]
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: State = "queued"
    progress: float = 0.0
    tiles: tuple[int, int] = (0, 0)
    results: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    result_path: Path | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    extra: dict[str, Any] = field(default_factory=dict)  # what a kind adds to its status

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled

    def status(self) -> dict[str, Any]:
        """What ``GET /api/jobs/{id}`` returns."""
        return {
            "id": self.id,
            "kind": self.kind,
            "model": self.model,
            "state": self.state,
            "progress": round(self.progress, 4),
            "tiles_done": self.tiles[0],
            "tiles_total": self.tiles[1],
            "files": self.files,
            "results": self.results,
            "message": self.message,
            "created": self.created,
            "finished": self.finished,
            **self.extra,
        }


class JobQueue:
    """Runs jobs on ``workers`` threads; at most ``max_waiting`` wait. A worker thread keeps
    its own state (e.g. loaded models, see :meth:`local`), so jobs never share a model."""

    def __init__(self, workers: int, max_waiting: int, ttl_s: float) -> None:
        self.workers, self.max_waiting, self.ttl_s = workers, max_waiting, ttl_s
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="restorekit-job")
        self._jobs: dict[str, Job] = {}
        self._futures: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._closed = False

    def local(self) -> threading.local:
        """This worker thread's own storage."""
        return self._local

    def submit(self, job: Job, work: Callable[[Job], None]) -> Job:
        """Queue ``job``; raises :class:`QueueFull` when too many wait, or when shutting down."""
        self.expire()
        with self._lock:
            waiting = sum(j.state == "queued" for j in self._jobs.values())
            if self._closed or waiting >= self.max_waiting:
                why = "the server is stopping" if self._closed else f"{waiting} jobs wait already"
                raise QueueFull(f"{why}; try again later")
            self._jobs[job.id] = job
            self._futures[job.id] = self._pool.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        if job.cancel.is_set():
            self._finish(job, "cancelled", "cancelled before it started")
            return
        job.state = "running"
        try:
            work(job)
        except JobCancelled:
            self._finish(job, "cancelled", "cancelled")
        except RestorekitError as error:
            self._finish(job, "failed", str(error))
        except Exception as error:  # noqa: BLE001 - a job's failure is reported, the server lives
            self._finish(job, "failed", f"internal error: {type(error).__name__}: {error}")
        else:
            self._finish(job, "done", job.message)

    @staticmethod
    def _finish(job: Job, state: State, message: str) -> None:
        job.message, job.finished = message, time.time()
        if state == "done":
            job.progress = 1.0
        job.state = state  # last: a result is served only once everything above is set

    def get(self, job_id: str) -> Job | None:
        self.expire()
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def delete(self, job_id: str) -> Job | None:
        """Cancel a job (a running one stops at its next check) and, once finished, forget it
        and remove its folder."""
        job = self.get(job_id)
        if job is None:
            return None
        job.cancel.set()
        if job.state in FINISHED or self._futures[job_id].cancel():
            if job.state not in FINISHED:
                self._finish(job, "cancelled", "cancelled before it started")
            self._forget(job)
        return job

    def _forget(self, job: Job) -> None:
        with self._lock:
            self._jobs.pop(job.id, None)
            self._futures.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def expire(self) -> None:
        """Forget finished jobs older than the time to live, and remove their folders (checked
        on every submit and lookup)."""
        now = time.time()
        with self._lock:
            old = [j for j in self._jobs.values() if j.finished and now - j.finished > self.ttl_s]
        for job in old:
            self._forget(job)

    def shutdown(self) -> None:
        """Refuse new jobs, fail the waiting ones, stop trainings at their next step (they keep
        a checkpoint) and wait for the running ones to finish."""
        with self._lock:
            self._closed = True
            pending = [(self._jobs[i], self._futures[i]) for i in self._jobs]
        for job, future in pending:
            if job.state == "queued" and future.cancel():
                self._finish(job, "failed", "the server stopped before the job started")
            elif job.kind == "train":
                job.cancel.set()
        self._pool.shutdown(wait=True)
