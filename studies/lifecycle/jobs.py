"""Claim, heartbeat, progress, finish and sweep: the life of every background job.

Candidates, GAN training runs and study reports (:class:`studies.models.Job`)
change state only through the functions here, and every write a worker makes
is *claim-guarded*:

* A worker **claims** a queued job with one conditional
  ``UPDATE … SET status='running', claim=<fresh token> WHERE status='queued'``.
  The database serialises such updates (PostgreSQL row locks, SQLite's single
  writer), so of two workers given the same job only one gets it.
* Every later write (progress, files, the result) is
  ``UPDATE … WHERE claim=<token> AND status='running'``. A worker whose job
  was cancelled, or re-queued by the sweep and claimed by another worker,
  writes nothing: the call returns ``False`` and the caller deletes any file
  it had put in storage.
* While a job runs, a :class:`Heartbeat` thread refreshes ``heartbeat_at``.
  The periodic sweep puts a running job whose heartbeat stopped (its worker
  died: ``kill -9``, the OOM killer, a lost machine) back in the queue and
  sends its task again, so the job resumes on another worker.

Tasks are queued by name after the transaction commits (:func:`enqueue`), so
this package never imports :mod:`studies.tasks`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ..models import Job, JobStatus

logger = logging.getLogger(__name__)

# Errors worth retrying the whole task for (the database or broker blinked).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
# A job whose worker died this many times is failed rather than re-queued
# again: it probably kills the worker (e.g. the kernel's OOM killer).
MAX_ATTEMPTS = 3
PENDING = (JobStatus.QUEUED, JobStatus.RUNNING)


def heartbeat_seconds() -> float:
    return float(getattr(settings, "STYLESTUDY_HEARTBEAT_SECONDS", 10))


def stale_after_seconds() -> float:
    return float(getattr(settings, "STYLESTUDY_STALE_AFTER_SECONDS", 120))


def requeue_queued_after_seconds() -> float:
    return float(getattr(settings, "STYLESTUDY_REQUEUE_QUEUED_AFTER_SECONDS", 6 * 3600))


def new_token() -> str:
    """A fresh claim token (32 hex characters)."""
    return uuid.uuid4().hex


def enqueue(task_name: str, *args: Any, **kwargs: Any) -> None:
    """Send task ``task_name`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _task(task_name).delay(*args, **kwargs))


def _task(name: str):
    """The registered task ``name``; a web process registers the app's task modules on first use."""
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[name]


def claim(model: type[Job], ids: Iterable[int], token: str, host: str, *, take_over_stale: bool = False,
          **fields: Any) -> list[int]:
    """Mark queued jobs ``ids`` running under ``token``; returns the ids this call got.

    With ``take_over_stale`` a running job whose heartbeat is older than the
    stale limit is taken over too (its redelivered task arrived before the
    sweep ran); a job with a fresh heartbeat belongs to a live worker.
    """
    now = timezone.now()
    values = dict(status=JobStatus.RUNNING, claim=token, worker=host[:200], heartbeat_at=now, finished_at=None,
                  attempts=F("attempts") + 1, error="", **fields)
    got = []
    for pk in ids:
        won = model.objects.filter(pk=pk, status=JobStatus.QUEUED).update(started_at=now, **values)
        if not won and take_over_stale:
            stale = now - timedelta(seconds=stale_after_seconds())
            won = model.objects.filter(pk=pk, status=JobStatus.RUNNING, heartbeat_at__lt=stale).update(**values)
        if won:
            got.append(pk)
    return got


def held(model: type[Job], ids: int | Iterable[int], token: str) -> QuerySet:
    """The rows of ``ids`` still running under ``token`` (every worker write goes through this)."""
    pks = [ids] if isinstance(ids, int) else list(ids)
    return model.objects.filter(pk__in=pks, claim=token, status=JobStatus.RUNNING)


def update_held(model: type[Job], pk: int, token: str, **fields: Any) -> bool:
    """Write ``fields`` to job ``pk`` if ``token`` still holds it; ``False`` if the claim was lost."""
    return bool(held(model, pk, token).update(heartbeat_at=timezone.now(), **fields))


def finish(model: type[Job], pk: int, token: str, status: str, error: str = "", **fields: Any) -> bool:
    """End job ``pk`` with ``status`` if ``token`` still holds it; ``False`` if the claim was lost."""
    if error:
        logger.warning("%s %s %s: %s", model.__name__, pk, status, error)
    return bool(held(model, pk, token).update(status=status, error=error[:4000], finished_at=timezone.now(),
                                              **fields))


def release(model: type[Job], ids: Iterable[int], token: str, reason: str) -> int:
    """Put jobs still running under ``token`` back in the queue (their task will be retried)."""
    return held(model, ids, token).update(status=JobStatus.QUEUED, claim="", error=reason[:2000],
                                          queued_at=timezone.now())


def cancel(queryset: QuerySet, reason: str) -> list[int]:
    """Cancel the queued and running jobs of ``queryset``; a running worker's later writes are refused."""
    ids = list(queryset.filter(status__in=PENDING).values_list("pk", flat=True))
    queryset.model.objects.filter(pk__in=ids, status__in=PENDING).update(
        status=JobStatus.CANCELLED, claim="", error=reason, finished_at=timezone.now()
    )
    return ids


def requeue(queryset: QuerySet, **fields: Any) -> list[int]:
    """Queue the failed and cancelled jobs of ``queryset`` again (attempts start over)."""
    ids = list(queryset.filter(status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).values_list("pk", flat=True))
    queryset.model.objects.filter(pk__in=ids).update(status=JobStatus.QUEUED, error="", claim="", attempts=0,
                                                     queued_at=timezone.now(), **fields)
    return ids


def sweep(model: type[Job], *, stale_after: float | None = None, requeue_queued_after: float | None = None,
          max_attempts: int = MAX_ATTEMPTS, what: str = "running this job") -> dict[str, list[int]]:
    """Re-queue running jobs whose worker stopped sending heartbeats.

    Also marks for re-sending jobs queued for longer than
    ``requeue_queued_after`` seconds (their message may have died with a
    worker on a broker without redelivery); duplicates are harmless since a
    task only claims queued jobs. A job whose worker died ``max_attempts``
    times is failed with a message. The caller sends the tasks.

    Returns:
        ``{"requeued": [...], "resent": [...], "failed": [...]}`` (ids).
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_after if stale_after is not None else stale_after_seconds())
    stale = model.objects.filter(status=JobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    requeued, failed = [], []
    for pk, token, worker, attempts in stale.values_list("pk", "claim", "worker", "attempts"):
        if attempts >= max_attempts:
            fields = dict(status=JobStatus.FAILED, finished_at=now,
                          error=f"the worker died {attempts} times while {what} "
                                f"(last on {worker}); not retried again")
        else:
            fields = dict(status=JobStatus.QUEUED, queued_at=now,
                          error=f"re-queued: worker {worker} stopped sending heartbeats")
        # Only if nobody touched it meanwhile (same claim, still running).
        if held(model, pk, token).update(claim="", **fields):
            (failed if attempts >= max_attempts else requeued).append(pk)
    old = now - timedelta(
        seconds=requeue_queued_after if requeue_queued_after is not None else requeue_queued_after_seconds()
    )
    resend = list(model.objects.filter(status=JobStatus.QUEUED, queued_at__lt=old).values_list("pk", flat=True))
    model.objects.filter(pk__in=resend).update(queued_at=now)
    if requeued or failed:
        logger.warning("stale %s sweep: re-queued %s, failed %s", model.__name__, requeued, failed)
    return {"requeued": requeued, "resent": resend, "failed": failed}


class Heartbeat:
    """Calls ``beat()`` from a thread every heartbeat interval while a block runs.

    So a slow batch, a slow training iteration or a long report step never
    looks like a dead worker to the sweep.
    """

    def __init__(self, beat: Callable[[], object], name: str) -> None:
        self.beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @classmethod
    def of(cls, model: type[Job], ids: int | Iterable[int], token: str) -> Heartbeat:
        """Keeps the jobs ``ids`` held by ``token`` fresh for the sweep."""
        rows = held(model, ids, token)
        return cls(lambda: rows.update(heartbeat_at=timezone.now()), f"{model.__name__.lower()}-heartbeat")

    def _run(self) -> None:
        interval = heartbeat_seconds()
        try:
            while not self._stop.wait(interval):
                try:
                    self.beat()
                except TRANSIENT_ERRORS as exc:  # the next beat may succeed
                    logger.warning("heartbeat failed: %s", exc)
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class Throttle:
    """True at most once every ``seconds`` (progress writes, cancel polls).

    A long job has thousands of steps; a database write per step would cost
    more than a small step.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = float("-inf")

    def __call__(self, *, force: bool = False) -> bool:
        now = time.monotonic()
        if force or now - self._last >= self.seconds:
            self._last = now
            return True
        return False


def fault_delay() -> None:
    """Sleep ``STYLESTUDY_FAULT_DELAY_SECONDS`` after a claim: the window the crash tests kill a worker in."""
    delay = float(getattr(settings, "STYLESTUDY_FAULT_DELAY_SECONDS", 0) or 0)
    if delay:
        time.sleep(delay)
