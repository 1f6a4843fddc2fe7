"""Erasure in the admin: researchers' actions on studies and participants, the audit log.

Every erasure goes through :mod:`studies.actions.erasure` (rows and audit entry
in one transaction) after a confirmation page; the admin's plain "delete"
never reaches participant rows, so no erasure escapes the audit log.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .actions import erasure
from .models import ErasureRecord, Participant, Response, Study
from .permissions import filter_owned

#: Permission an erasure needs (a researcher who may change the study may erase its participant data).
ERASE_PERMISSION = "studies.change_study"


class RecruiterIdForm(forms.Form):
    recruiter_id = forms.CharField(
        label=_("Recruiter id"), max_length=200, strip=True,
        help_text=_("The participant's id at the recruiter (e.g. their Prolific id). It is matched by its keyed "
                    "hash and not stored."),
    )


def _confirm_page(request, admin_obj, queryset, *, action: str, title: str, summary: list[str], form=None):
    context = {
        **admin_obj.admin_site.each_context(request),
        "title": title,
        "opts": admin_obj.model._meta,
        "queryset": queryset,
        "action": action,
        "summary": summary,
        "form": form,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/studies/erase_confirmation.html", context)


def _counts(participants) -> str:
    n = participants.count()
    responses = Response.objects.filter(trial__participant__in=participants).count()
    return ngettext("%(n)d participant", "%(n)d participants", n) % {"n": n} + ", " + ngettext(
        "%(r)d response", "%(r)d responses", responses
    ) % {"r": responses}


def _report(admin_obj, request, record: ErasureRecord) -> None:
    admin_obj.message_user(
        request,
        _("%(study)s: erased %(p)d participant(s), %(t)d trial(s), %(r)d response(s) and %(b)d background "
          "questionnaire(s); %(rep)d stored report(s) deleted. Recorded in the erasure log.")
        % {"study": record.study_label, "p": record.participants, "t": record.trials, "r": record.responses,
           "b": record.background_answers, "rep": record.reports},
        messages.SUCCESS,
    )
    if record.deleted_reports:
        admin_obj.message_user(request, _("Deleted reports: %(reports)s.") % {"reports": record.deleted_reports_text()},
                               messages.WARNING)


#: The report list names the reports that erasures deleted in this many recent days.
REPORT_NOTICE_DAYS = 30
#: At most this many erasures are named there (the erasure log has them all).
REPORT_NOTICE_MAX = 5


def notify_deleted_reports(admin_obj, request: HttpRequest) -> None:
    """Tell a researcher on the report list which of their reports recent erasures deleted, and why.

    A withdrawal happens while no researcher is looking; this is where they notice a report gone.
    """
    since = timezone.now() - timedelta(days=REPORT_NOTICE_DAYS)
    records = filter_owned(ErasureRecord.objects.filter(performed_at__gte=since, reports__gt=0),
                           request.user, "study").order_by("-performed_at")
    for record in [r for r in records if r.deleted_reports][:REPORT_NOTICE_MAX]:
        admin_obj.message_user(
            request,
            _("%(study)s: an erasure on %(when)s (%(scope)s) deleted %(reports)s. See the erasure log.")
            % {"study": record.study_label, "when": timezone.localtime(record.performed_at).strftime("%Y-%m-%d %H:%M"),
               "scope": record.get_scope_display(), "reports": record.deleted_reports_text()},
            messages.WARNING,
        )


class StudyErasureMixin:
    """Study admin: erase all participant data, erase one participant by recruiter id, delete safely."""

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ERASE_PERMISSION)

    def get_actions(self, request):
        actions = super().get_actions(request)
        for name in ("erase_participant_data", "erase_by_recruiter_id"):
            action = self.get_action(name)
            if action is not None and self.has_erase_permission(request):
                actions[name] = action
        return actions

    def has_delete_permission(self, request, obj=None):
        if not super().has_delete_permission(request, obj):
            return False
        if request.user.is_superuser:
            return True
        # Owners may delete a draft nobody has taken part in; data of real participants goes
        # through the erasure actions (with their audit entry) or a superuser.
        return obj is None or (not obj.is_frozen and not obj.participants.counted().exists())

    def get_deleted_objects(self, objs, request):
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        if all(self.has_delete_permission(request, obj) for obj in objs):
            # Rows beneath a study (candidates, participants) have no delete permission of their
            # own; they go with the study, through do_delete_study and its audit entry.
            perms_needed = set()
        return deleted, model_count, perms_needed, protected

    def delete_model(self, request, obj):
        erasure.do_delete_study(obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for study in queryset:
            if self.has_delete_permission(request, study):
                erasure.do_delete_study(study, by=request.user)
            else:
                self.message_user(request, _("%(study)s was not deleted: it has participant data; erase it first.")
                                  % {"study": study}, messages.ERROR)

    @admin.action(description=_("Erase all participant data of the selected studies…"))
    def erase_participant_data(self, request, queryset):
        if request.POST.get("confirmed") == "yes":
            for study in queryset:
                _report(self, request, erasure.do_erase_study_participants(study, by=request.user))
            return None
        summary = [f"{study}: {_counts(Participant.objects.filter(study=study))}" for study in queryset]
        return _confirm_page(request, self, queryset, action="erase_participant_data",
                             title=_("Erase all participant data?"), summary=summary)

    @admin.action(description=_("Erase one participant by recruiter id…"))
    def erase_by_recruiter_id(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one study."), messages.ERROR)
            return None
        study = queryset.get()
        form = RecruiterIdForm(request.POST if request.POST.get("confirmed") == "yes" else None)
        if form.is_bound and form.is_valid():
            record = erasure.do_erase_by_recruiter_id(study, form.cleaned_data["recruiter_id"], by=request.user)
            if record is None:
                self.message_user(request, _("%(study)s: no participant has that recruiter id.") % {"study": study},
                                  messages.WARNING)
            else:
                _report(self, request, record)
            return None
        return _confirm_page(request, self, queryset, action="erase_by_recruiter_id",
                             title=_("Erase one participant of %(study)s") % {"study": study},
                             summary=[], form=form)


class ParticipantErasureMixin:
    """Participant admin: erase the selected participants (with a confirmation page)."""

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ERASE_PERMISSION)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_erase_permission(request):
            actions["erase_selected"] = self.get_action("erase_selected")
        return actions

    @admin.action(description=_("Erase the selected participants…"))
    def erase_selected(self, request, queryset):
        if request.POST.get("confirmed") == "yes":
            for study in Study.objects.filter(pk__in=queryset.values("study")):
                _report(self, request, erasure.do_erase_participants(study, queryset, by=request.user))
            return None
        return _confirm_page(request, self, queryset, action="erase_selected",
                             title=_("Erase the selected participants?"), summary=[_counts(queryset)])


@admin.register(ErasureRecord)
class ErasureRecordAdmin(admin.ModelAdmin):
    """The audit log: read-only, a researcher sees the entries of their own studies."""

    list_display = ["performed_at", "study_label", "scope", "performed_by_name", "participants", "responses",
                    "trials", "background_answers", "reports", "which_reports"]
    list_filter = ["scope"]
    # The deleted reports as sentences (id, when requested, why), not the stored JSON.
    fields = readonly_fields = ["performed_at", "study", "study_label", "scope", "performed_by", "performed_by_name",
                                "participants", "responses", "trials", "trial_items", "background_answers", "reports",
                                "which_reports"]

    @admin.display(description=_("deleted reports"))
    def which_reports(self, obj):
        return obj.deleted_reports_text() or "—"

    def get_queryset(self, request):
        return filter_owned(super().get_queryset(request), request.user, "study")

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
