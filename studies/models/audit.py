"""The record of changes made to a study while it is live."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..jsondiff import changed_entries
from .study import Study


class LiveEdit(models.Model):
    """One field changed while its study was live or closed: who, when, before and after.

    Listed in the report's configuration appendix; only wording, redirect
    URLs, the completion code, quotas and the closing date can change then.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="live_edits", verbose_name=_("study"))
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("changed by"),
    )
    changed_by_name = models.CharField(_("changed by (name)"), max_length=150, blank=True)
    changed_at = models.DateTimeField(_("changed"), default=timezone.now, db_index=True)
    target = models.CharField(_("what"), max_length=200, help_text=_("e.g. study, question 2, group chinese"))
    field = models.CharField(_("field"), max_length=200)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)

    class Meta:
        verbose_name = _("change while live")
        verbose_name_plural = _("changes while live")
        ordering = ["study", "changed_at", "id"]

    def __str__(self) -> str:
        return f"{self.target} · {self.field}"

    def changes(self) -> list[tuple[str, str, str]]:
        """``(field, before, after)`` as text, one per entry that differs.

        A change inside a list or mapping names the entry (``choices[1].labels.ja``);
        long text is cut around the change, as in the report's appendix.
        """
        return changed_entries(self.field, self.before, self.after)
