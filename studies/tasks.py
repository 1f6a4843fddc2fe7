"""Celery tasks: thin wrappers that load rows by id, call stylecore or analysis, store results.

Routing (``CELERY_TASK_ROUTES``): ``generate_*``, ``score_*`` and ``train_*``
go to the ``gpu`` queue, everything else to ``cpu``. Every task here is
idempotent (see :mod:`studies.pipeline`), so late acknowledgement and
redelivery after a worker dies are safe.
"""

from __future__ import annotations

import socket

from celery import shared_task
from django.db import connection

from .pipeline import (
    TRANSIENT_ERRORS,
    run_generation,
    run_scoring,
    sweep_stale_candidates,
)

# Transient failures: retried with exponential backoff (5 s, 10 s, … ≤ 5 min).
_RETRY = dict(
    autoretry_for=TRANSIENT_ERRORS, retry_backoff=5, retry_backoff_max=300, retry_jitter=True, max_retries=6,
    acks_late=True, reject_on_worker_lost=True,
)


@shared_task(name="studies.tasks.ping_task")
def ping_task(payload: str) -> dict:
    """Round-trip check: echoes ``payload`` with the worker's host and database vendor."""
    from studies.models import Study

    return {
        "payload": payload,
        "worker": socket.gethostname(),
        "database": connection.vendor,
        "database_name": str(connection.settings_dict["NAME"]),
        "studies": Study.objects.count(),
    }


@shared_task(name="studies.tasks.generate_candidates_task", ignore_result=True, **_RETRY)
def generate_candidates_task(candidate_ids: list[int], score: list[str] | bool = False) -> dict:
    """Generate queued candidates (one batched model call per method config and seed).

    Args:
        candidate_ids: candidates to generate; ones that are not queued any
            more (done, running elsewhere, cancelled) are skipped.
        score: then queue scoring of the new images: a list of metric names,
            ``True`` for the default metrics, ``False`` for none.
    """
    outcome = run_generation(candidate_ids)
    if score and outcome["done"]:
        score_candidates_task.delay(outcome["done"], metrics=score if isinstance(score, list) else None)
    return outcome


@shared_task(name="studies.tasks.score_candidates_task", ignore_result=True, **_RETRY)
def score_candidates_task(candidate_ids: list[int], metrics: list[str] | None = None) -> dict:
    """Compute and store metric values of generated candidates (skips stored ones)."""
    return run_scoring(candidate_ids, metrics)


@shared_task(name="studies.tasks.sweep_stale_candidates_task", ignore_result=True, **_RETRY)
def sweep_stale_candidates_task(stale_after: float | None = None) -> dict:
    """Re-queue candidates whose worker died while generating them (periodic, cpu queue)."""
    return sweep_stale_candidates(stale_after=stale_after)


@shared_task(name="studies.tasks.train_gan_task", ignore_result=True, time_limit=7 * 24 * 3600,
             soft_time_limit=7 * 24 * 3600 - 300, **_RETRY)
def train_gan_task(run_id: int) -> str:
    """Train or resume a GAN training run (gpu queue); safe to redeliver."""
    from .training import run_training

    return run_training(run_id)


@shared_task(name="studies.tasks.expire_stale_participants_task", ignore_result=True, **_RETRY)
def expire_stale_participants_task() -> int:
    """Free the design slots of sessions abandoned past their study's timeout (periodic)."""
    from .assignment import expire_stale_sessions

    return expire_stale_sessions()


@shared_task(name="studies.tasks.sweep_stale_training_runs_task", ignore_result=True, **_RETRY)
def sweep_stale_training_runs_task() -> list[int]:
    """Re-queue training runs whose worker died (periodic, cpu queue)."""
    from .training import sweep_stale_training_runs

    return sweep_stale_training_runs()


@shared_task(name="studies.tasks.build_study_report_task", ignore_result=True, acks_late=True,
             reject_on_worker_lost=True, time_limit=4 * 3600, soft_time_limit=4 * 3600 - 60)
def build_study_report_task(report_id: int) -> str:
    """Build a study report (cpu queue) and keep its archive in storage."""
    from .reports.jobs import run_report_job

    return run_report_job(report_id)
