"""Study reports as jobs: request, claim, progress, store, sweep.

A report's worker (:mod:`studies.workers.report`) builds into a temporary
folder and stores the archive only while its claim holds: a worker that lost
its claim (swept after a missed heartbeat, the report rebuilt elsewhere)
leaves no file behind and changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from ..models import JobStatus, Study, StudyReport
from . import jobs

REPORT_TASK = "studies.tasks.build_study_report_task"


def do_request_report(study: Study, *, requested_by: str = "") -> StudyReport:
    """Create a report job for ``study`` and queue it on the cpu queue after commit."""
    with transaction.atomic():
        report = StudyReport.objects.create(study=study, requested_by=requested_by, queued_at=timezone.now())
        jobs.enqueue(REPORT_TASK, report.pk)
    return report


# Worker side ---------------------------------------------------------------


def claim_report(report_id: int, token: str, host: str) -> StudyReport | None:
    """Report ``report_id`` claimed under ``token``; ``None`` if done or being built elsewhere."""
    if not jobs.claim(StudyReport, [report_id], token, host, take_over_stale=True, progress=0.0):
        return None
    return StudyReport.objects.get(pk=report_id)


def report_progress(report: StudyReport, fraction: float, message: str) -> bool:
    """Write progress of a held report; ``False`` if the claim was lost."""
    return jobs.update_held(StudyReport, report.pk, report.claim, progress=fraction, message=message[:200])


def store_report(report: StudyReport, *, archive: Path, html: Path | None, summary: dict,
                 participant_ids: list[int] | None = None) -> bool:
    """Put the archive (and HTML) in storage and mark the report done, only under its claim.

    ``participant_ids`` (those with rows in the files) is recorded in the same update, so an
    erasure keeps the report only if none of them is erased; ``None`` (not known) means any
    erasure deletes it.
    """
    names = {}
    for field, path, name in (("archive", archive, archive.name), ("html", html, "report.html")):
        if path is None:
            continue
        with open(path, "rb") as f:
            names[field] = default_storage.save(getattr(report, field).field.generate_filename(report, name), File(f))
    if jobs.finish(StudyReport, report.pk, report.claim, JobStatus.DONE, progress=1.0, message="done",
                   summary=summary, participant_ids=participant_ids, **names):
        return True
    for name in names.values():
        default_storage.delete(name)
    return False


def fail_report(report: StudyReport, error: str) -> bool:
    """Mark a held report failed with ``error`` (also its current step, so the list shows it)."""
    return jobs.finish(StudyReport, report.pk, report.claim, JobStatus.FAILED, error,
                       message=f"failed: {error}"[:200])


def release_report(report: StudyReport, reason: str) -> bool:
    """Put a held report back in the queue (its task is retried); ``False`` if the claim was lost."""
    return bool(jobs.release(StudyReport, [report.pk], report.claim, reason))


def sweep_stale_reports(*, stale_after: float | None = None) -> list[int]:
    """Re-queue reports whose worker stopped beating (and re-send lost ones); returns the re-queued ids."""
    swept = jobs.sweep(StudyReport, stale_after=stale_after, what="building this report")
    for report_id in swept["requeued"] + swept["resent"]:
        jobs.enqueue(REPORT_TASK, report_id)
    return swept["requeued"]
