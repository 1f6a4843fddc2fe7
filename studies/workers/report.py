"""Build a claimed study report into a temporary folder; keep a zip in storage."""

from __future__ import annotations

import logging
import socket
import tempfile
import zipfile
from pathlib import Path

from ..lifecycle import jobs
from ..lifecycle import reports as lifecycle
from ..models import StudyReport
from ..reports.database import build_study_report

logger = logging.getLogger(__name__)

# Progress is written at most this often: a report has hundreds of steps.
PROGRESS_SECONDS = 2.0


def run_report_job(report_id: int, *, options=None, host: str | None = None) -> str:
    """Build report ``report_id``; returns its final status. Safe to run again.

    ``options`` (:class:`~studies.reports.ReportOptions`) defaults to the study's.
    """
    report = lifecycle.claim_report(report_id, jobs.new_token(), host or socket.gethostname())
    if report is None:
        return StudyReport.objects.values_list("status", flat=True).get(pk=report_id)
    throttle = jobs.Throttle(PROGRESS_SECONDS)

    def progress(fraction: float, message: str) -> None:
        if throttle(force=fraction >= 1.0):
            lifecycle.report_progress(report, fraction, message)

    with tempfile.TemporaryDirectory(prefix="stylestudy-report-") as tmp, \
            jobs.Heartbeat.of(StudyReport, report.pk, report.claim):
        jobs.fault_delay()
        out = Path(tmp) / "report"
        try:
            result = build_study_report(report.study_id, out, progress=progress, options=options)
        except jobs.TRANSIENT_ERRORS as exc:
            # The database or broker blinked: hand the report back for the task's retry.
            try:
                lifecycle.release_report(report, f"interrupted ({type(exc).__name__}: {exc}); re-queued")
            except jobs.TRANSIENT_ERRORS:
                logger.exception("could not release report %s; the stale sweep will", report_id)
            raise
        except Exception as exc:  # noqa: BLE001 - a build error fails this report, not the worker
            # Any other error comes from the study's data or the code and fails the same way on
            # every worker: fail the report now with the error, rather than leave it running
            # until the stale sweep takes it for a dead worker and builds it again.
            logger.exception("report %s of study %s failed", report_id, report.study_id)
            lifecycle.fail_report(report, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            return StudyReport.objects.values_list("status", flat=True).get(pk=report_id)
        archive = Path(tmp) / f"study-{report.study_id}-report-{report_id}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(out))
        html = result.files.get("html")
        lifecycle.store_report(
            report, archive=archive, html=Path(html) if html else None,
            summary={"rows": result.n_rows, "rows_analysed": result.n_rows_analysed,
                     "participants": result.n_participants, "seconds": round(result.seconds, 1),
                     "warnings": result.warnings},
            participant_ids=[int(pk) for pk in result.participant_ids],
        )
    return StudyReport.objects.values_list("status", flat=True).get(pk=report_id)
