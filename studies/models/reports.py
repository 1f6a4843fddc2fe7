"""Study reports built on the ``cpu`` queue and kept in storage for download."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .jobs import Job
from .study import Study


def report_upload_to(instance: StudyReport, filename: str) -> str:
    return f"studies/{instance.study_id}/reports/{instance.pk}/{filename}"


class StudyReport(Job):
    """One run of the statistical report: HTML, PDF, tidy CSV/Parquet, codebook, configuration."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="reports", verbose_name=_("study"))
    requested_by = models.CharField(_("requested by"), max_length=150, blank=True)
    progress = models.FloatField(_("progress"), default=0.0)
    message = models.CharField(_("current step"), max_length=200, blank=True)
    archive = models.FileField(_("report archive (zip)"), upload_to=report_upload_to, blank=True)
    html = models.FileField(_("HTML report"), upload_to=report_upload_to, blank=True)
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    participant_ids = models.JSONField(
        _("participants in the data"), null=True, blank=True, editable=False,
        help_text=_("Participants with rows in the report's files, recorded when it is built; empty until then."),
    )
    created_at = models.DateTimeField(_("requested"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("study report")
        verbose_name_plural = _("study reports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"report {self.pk} of {self.study}"
