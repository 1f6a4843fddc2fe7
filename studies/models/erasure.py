"""The audit log of erasures: who erased how many rows of which study, and when; never the data."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .study import Study


class ErasureRecord(models.Model):
    """One erasure of participant data (a withdrawal, or a researcher's action).

    It records counts only: no token, recruiter id, answer or participant id
    survives the erasure here.
    """

    class Scope(models.TextChoices):
        WITHDRAWAL = "withdrawal", _("Participant withdrew")
        PARTICIPANT = "participant", _("One participant, erased by a researcher")
        RECRUITER_ID = "recruiter_id", _("One participant, found by recruiter id")
        STUDY = "study", _("All participant data of the study")
        STUDY_DELETED = "study_deleted", _("Study deleted")

    class ReportReason(models.TextChoices):
        """Why an erasure deleted a stored report (see :func:`studies.actions.erasure.delete_reports_holding`)."""

        HELD_DATA = "held_data", _("it was built from the erased participants' responses")
        NOT_BUILT = "not_built", _("it was not built to the end (running, failed or cancelled) and may have read "
                                   "the erased data")
        UNRECORDED = "unrecorded", _("it does not record which participants it holds, so it may hold the erased data")
        STUDY_DELETED = "study_deleted", _("the study was deleted")

    study = models.ForeignKey(
        Study, on_delete=models.SET_NULL, null=True, blank=True, related_name="erasures", verbose_name=_("study")
    )
    study_label = models.CharField(
        _("study (at the time)"), max_length=300, help_text=_("Title and slug, kept when the study itself is deleted.")
    )
    scope = models.CharField(_("scope"), max_length=16, choices=Scope.choices)
    performed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("performed by"),
    )
    performed_by_name = models.CharField(
        _("performed by (name)"), max_length=150, help_text=_("User name, or “participant” for a withdrawal.")
    )
    performed_at = models.DateTimeField(_("performed"), default=timezone.now, editable=False)
    participants = models.PositiveIntegerField(_("participants erased"), default=0)
    trials = models.PositiveIntegerField(_("trials erased"), default=0)
    trial_items = models.PositiveIntegerField(_("trial items erased"), default=0)
    responses = models.PositiveIntegerField(_("responses erased"), default=0)
    background_answers = models.PositiveIntegerField(
        _("background questionnaires erased"), default=0, help_text=_("Participants whose background answers were erased.")
    )
    reports = models.PositiveIntegerField(
        _("reports deleted"), default=0, help_text=_("Stored reports of the study, which held copies of the data.")
    )
    deleted_reports = models.JSONField(
        _("deleted reports"), default=list, blank=True,
        help_text=_("Each deleted report: its id, when it was requested and why it was deleted."),
    )

    class Meta:
        verbose_name = _("erasure record")
        verbose_name_plural = _("erasure records")
        ordering = ["-performed_at"]

    def __str__(self) -> str:
        return f"{self.get_scope_display()}: {self.study_label} ({self.performed_at:%Y-%m-%d %H:%M})"

    def deleted_reports_text(self) -> str:
        """The deleted reports, one sentence each: id, when it was requested, why it was deleted."""
        reasons = dict(self.ReportReason.choices)
        lines = []
        for entry in self.deleted_reports or []:
            try:
                requested = timezone.localtime(datetime.fromisoformat(entry["requested"])).strftime("%Y-%m-%d %H:%M")
            except (KeyError, TypeError, ValueError):
                requested = "?"
            lines.append(_("report %(id)s (requested %(requested)s): %(reason)s") % {
                "id": entry.get("id", "?"), "requested": requested,
                "reason": reasons.get(entry.get("reason"), entry.get("reason", "?"))})
        return "; ".join(str(line) for line in lines)
