"""The report as a background job: build into a temporary folder, keep a zip in storage."""

from __future__ import annotations

import logging
import tempfile
import time
import zipfile
from pathlib import Path

from django.core.files import File
from django.utils import timezone

logger = logging.getLogger(__name__)

# Progress is written at most this often: a report has hundreds of steps.
_PROGRESS_SECONDS = 2.0


def run_report_job(report_id: int, *, options=None) -> str:
    """Build report ``report_id``; returns its final status. Safe to run again.

    ``options`` (:class:`~studies.reports.ReportOptions`) defaults to the study's.
    """
    from studies.models import StudyReport

    from .build import build_study_report

    report = StudyReport.objects.get(pk=report_id)
    if report.status == StudyReport.Status.DONE:
        return report.status
    StudyReport.objects.filter(pk=report_id).update(status=StudyReport.Status.RUNNING, error="", progress=0.0)
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        if time.monotonic() - last[0] >= _PROGRESS_SECONDS or fraction >= 1.0:
            last[0] = time.monotonic()
            StudyReport.objects.filter(pk=report_id).update(progress=fraction, message=message[:200])

    with tempfile.TemporaryDirectory(prefix="stylestudy-report-") as tmp:
        out = Path(tmp) / "report"
        try:
            result = build_study_report(report.study_id, out, progress=progress, options=options)
        except (ValueError, KeyError, RuntimeError) as exc:
            StudyReport.objects.filter(pk=report_id).update(
                status=StudyReport.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
            )
            logger.warning("report %s failed: %s", report_id, exc)
            return StudyReport.Status.FAILED
        archive = Path(tmp) / f"study-{report.study_id}-report-{report_id}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(out))
        with open(archive, "rb") as f:
            report.archive.save(archive.name, File(f), save=False)
        html = result.files.get("html")
        if html:
            with open(html, "rb") as f:
                report.html.save("report.html", File(f), save=False)
    report.status = StudyReport.Status.DONE
    report.progress = 1.0
    report.message = "done"
    report.finished_at = timezone.now()
    report.summary = {
        "rows": result.n_rows, "rows_analysed": result.n_rows_analysed,
        "participants": result.n_participants, "seconds": round(result.seconds, 1), "warnings": result.warnings,
    }
    report.save()
    return report.status
