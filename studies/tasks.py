"""Celery tasks: thin wrappers that run a worker function on ids and queue the follow-up.

Routing (``CELERY_TASK_ROUTES``): ``generate_*``, ``score_*`` and ``train_*``
go to the ``gpu`` queue, everything else to ``cpu``. Every job task is
idempotent (claims and claim-guarded writes, see :mod:`studies.lifecycle.jobs`),
so late acknowledgement and redelivery after a worker dies are safe.
"""

from __future__ import annotations

import socket

from celery import shared_task
from django.db import connection

from .assignment import expire_stale_sessions
from .lifecycle.candidates import queue_scoring_after_generation, sweep_stale_candidates
from .lifecycle.jobs import TRANSIENT_ERRORS
from .lifecycle.reports import sweep_stale_reports
from .lifecycle.training import sweep_stale_training_runs
from .models import Study
from .workers.generate import run_generation
from .workers.report import run_report_job
from .workers.score import run_scoring, run_set_scoring
from .workers.train import run_training

# Transient failures: retried with exponential backoff (5 s, 10 s, … ≤ 5 min).
_RETRY = dict(
    autoretry_for=TRANSIENT_ERRORS, retry_backoff=5, retry_backoff_max=300, retry_jitter=True, max_retries=6,
    acks_late=True, reject_on_worker_lost=True,
)


@shared_task(name="studies.tasks.ping_task")
def ping_task(payload: str) -> dict:
    """Round-trip check: echoes ``payload`` with the worker's host and database vendor."""
    return {
        "payload": payload,
        "worker": socket.gethostname(),
        "database": connection.vendor,
        "database_name": str(connection.settings_dict["NAME"]),
        "studies": Study.objects.count(),
    }


@shared_task(name="studies.tasks.generate_candidates_task", ignore_result=True, **_RETRY)
def generate_candidates_task(candidate_ids: list[int]) -> dict:
    """Generate queued candidates of one method config and seed, then queue their scoring as chosen."""
    outcome = run_generation(candidate_ids)
    queue_scoring_after_generation(outcome["done"])
    return outcome


@shared_task(name="studies.tasks.score_candidates_task", ignore_result=True, **_RETRY)
def score_candidates_task(candidate_ids: list[int], metrics: list[str] | None = None) -> dict:
    """Store per-image metrics of generated candidates, then the set metrics of their complete sets."""
    return {**run_scoring(candidate_ids, metrics), **run_set_scoring(candidate_ids, metrics)}


@shared_task(name="studies.tasks.sweep_stale_jobs_task", ignore_result=True, **_RETRY)
def sweep_stale_jobs_task() -> dict:
    """Re-queue candidates, training runs and reports whose worker died (periodic, cpu queue)."""
    return {
        "candidates": sweep_stale_candidates(),
        "training_runs": sweep_stale_training_runs(),
        "reports": sweep_stale_reports(),
    }


@shared_task(name="studies.tasks.train_gan_task", ignore_result=True, time_limit=7 * 24 * 3600,
             soft_time_limit=7 * 24 * 3600 - 300, **_RETRY)
def train_gan_task(run_id: int) -> str:
    """Train or resume a GAN training run (gpu queue); safe to redeliver."""
    return run_training(run_id)


@shared_task(name="studies.tasks.build_study_report_task", ignore_result=True, time_limit=4 * 3600,
             soft_time_limit=4 * 3600 - 60, **_RETRY)
def build_study_report_task(report_id: int) -> str:
    """Build a study report (cpu queue) and keep its archive in storage; safe to redeliver."""
    return run_report_job(report_id)


@shared_task(name="studies.tasks.expire_stale_participants_task", ignore_result=True, **_RETRY)
def expire_stale_participants_task() -> int:
    """Free the design slots of sessions abandoned past their study's timeout (periodic)."""
    return expire_stale_sessions()
