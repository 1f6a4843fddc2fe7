"""What every background job row has: a status, a claim, a heartbeat, timings.

Candidates, GAN training runs and study reports are all *jobs*: queued by a
researcher's action, claimed by one worker at a time, refreshed by a
heartbeat while the worker lives, finished (or failed, or cancelled) exactly
once. :mod:`studies.lifecycle.jobs` is the only code that changes these
fields.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class Job(models.Model):
    """Abstract base of every background job row."""

    Status = JobStatus

    status = models.CharField(_("status"), max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED,
                              db_index=True)
    claim = models.CharField(
        _("claim token"), max_length=32, blank=True, editable=False,
        help_text=_("Set by the worker running this job; writes under any other claim are refused."),
    )
    worker = models.CharField(_("worker host"), max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error = models.TextField(_("error"), blank=True)
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True, editable=False)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
