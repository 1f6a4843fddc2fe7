"""The researcher's UI: studies, stimuli, methods, the generation pipeline, participants.

Every admin here limits rows to the studies the user owns (a superuser sees
all) through :mod:`studies.permissions`; custom views check access before
doing anything.
"""

from __future__ import annotations

import json
import zipfile

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from .actions import (
    design_document,
    do_cancel,
    do_cancel_candidates,
    do_close,
    do_duplicate_study,
    do_go_live,
    do_import_design,
    do_import_images,
    do_queue_generation,
    do_queue_scoring,
    do_request_cancel,
    do_request_report,
    do_requeue_candidates,
    do_retry_failed,
    do_save_live_edit,
    do_start_training_run,
)
from .actions.participants import do_add_default_background_questions
from .admin_erasure import (
    ParticipantErasureMixin,
    StudyErasureMixin,
    notify_deleted_reports,
)
from .admin_forms import (
    STUDY_TEXTS,
    BackgroundQuestionForm,
    BulkUploadForm,
    DesignImportForm,
    GanTrainingRunForm,
    MethodConfigForm,
    ParticipantGroupForm,
    QuestionForm,
    StudyForm,
    site_languages,
)
from .admin_scoping import owned_choices, owned_list_filters
from .admin_training import (
    data_size_warnings,
    loss_curves_svg,
    use_as_method,
    warn_about_data_size,
)
from .checklist import check_go_live
from .models import (
    BackgroundQuestion,
    Candidate,
    ContentImage,
    CultureTag,
    GanTrainingRun,
    LiveEdit,
    MethodConfig,
    MetricValue,
    Participant,
    ParticipantGroup,
    Question,
    Response,
    SetMetricValue,
    Study,
    StudyReport,
    StyleImage,
    Trial,
    TrialItem,
)
from .models.study import frozen_studies_using_culture
from .permissions import access_study_for_user, filter_owned, make_researcher
from .queries import preview_page, study_progress
from .security import ThrottledAdminAuthenticationForm
from .workers.catalogue import method_specs

# Sign-in attempts are throttled per user name and per address (studies.security).
admin.site.login_form = ThrottledAdminAuthenticationForm

admin.site.site_header = "stylestudy"
admin.site.site_title = "stylestudy"
admin.site.index_title = _("Studies and their data")


def _thumb(field, size: int = 64) -> str:
    if not field:
        return "—"
    # A size class, not a style attribute: the Content-Security-Policy allows no inline styles.
    return format_html('<img src="{}" class="thumb-{}" alt="">', field.url, size)


class OwnedAdmin(admin.ModelAdmin):
    """Rows limited to the user's studies, reached through ``study_path``.

    List filters offer only values found in those rows, and foreign-key choices
    only rows of the user's studies, so no other researcher's study titles or
    group names show up anywhere (:mod:`studies.admin_scoping`).
    """

    study_path = "study"

    def get_queryset(self, request: HttpRequest):
        return filter_owned(super().get_queryset(request), request.user, self.study_path)

    def get_list_filter(self, request):
        return owned_list_filters(self.model, super().get_list_filter(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Only the user's own studies (and their rows) can be chosen.
        owned = owned_choices(db_field.related_model, request.user)
        if owned is not None:
            kwargs["queryset"] = owned
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class _FrozenRowDelete:
    """A row of a live or closed study has no delete button; its delete page says why instead of a bare 403."""

    def _frozen(self, obj) -> bool:
        return obj is not None and obj.study.is_frozen

    def delete_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if not self._frozen(obj) or not self.has_view_or_change_permission(request, obj):
            return super().delete_view(request, object_id, extra_context)
        self.message_user(
            request,
            _("“%(row)s” cannot be deleted: study “%(study)s” is %(status)s and its design is frozen (configuration "
              "hash %(hash)s). Duplicate the study as a new draft to change its design.")
            % {"row": obj, "study": obj.study, "status": obj.study.get_status_display().lower(),
               "hash": (obj.study.config_hash or "")[:12]},
            messages.ERROR,
        )
        opts = self.model._meta
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))


class FrozenAwareAdmin(_FrozenRowDelete, OwnedAdmin):
    """Stimuli and methods of a live or closed study become read-only."""

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not self._frozen(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not self._frozen(obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if self._frozen(obj):
            self.message_user(
                request,
                _("Study “%(study)s” is %(status)s: its stimuli and methods are frozen and cannot be edited.")
                % {"study": obj.study, "status": obj.study.get_status_display().lower()},
                messages.WARNING,
            )
        return super().change_view(request, object_id, form_url, extra_context)


class LiveEditAdmin(_FrozenRowDelete, OwnedAdmin):
    """A row of a study's design: wording stays editable while live (and is recorded), structure is read-only."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if request.method == "GET" and self._frozen(obj):
            self.message_user(
                request,
                _("Study “%(study)s” is %(status)s: this row cannot be deleted and its design is read-only.")
                % {"study": obj.study, "status": obj.study.get_status_display().lower()}
                + " " + obj.frozen_detail(),
                messages.INFO,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if self._frozen(obj):
            # Moving a row to another study is a change of both designs.
            fields += [f for f in ("study", *self.model.frozen_fields) if f.removesuffix("_id") not in fields]
            fields = [f.removesuffix("_id") for f in fields]
        return fields

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not self._frozen(obj)

    def save_model(self, request, obj, form, change):
        do_save_live_edit(obj, user=request.user)

    def delete_queryset(self, request, queryset):
        # The bulk "delete selected" action bypasses Model.delete(): rows of a
        # live or closed study are refused here too.
        frozen = queryset.filter(study__status__in=[Study.Status.LIVE, Study.Status.CLOSED])
        if frozen.exists():
            self.message_user(request, _("%(n)d row(s) belong to a live or closed study and were not deleted: its "
                                         "design is frozen.") % {"n": frozen.count()}, messages.ERROR)
        super().delete_queryset(request, queryset.exclude(pk__in=frozen.values("pk")))


class _LiveInline:
    """Inline rows of a live study: structure read-only, wording editable and recorded; no adding or deleting."""

    extra = 0

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.is_frozen:
            fields += [f.removesuffix("_id") for f in self.model.frozen_fields]
        return fields

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not (obj and obj.is_frozen)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj and obj.is_frozen)


# --- Studies ------------------------------------------------------------------


class MethodConfigInline(admin.TabularInline):
    model = MethodConfig
    fields = ["label", "method", "weights_family", "parameters"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # through "Add a method" (the method form shows the chosen method's parameters)

    @admin.display(description=_("weights family"))
    def weights_family(self, obj):
        if obj.family:
            return obj.family
        spec = method_specs().get(obj.method)
        try:
            resolved = spec.resolve_family(None) if spec is not None else None
        except ValueError:
            resolved = None
        return _("default (%(family)s)") % {"family": resolved} if resolved else _("the method's default")

    @admin.display(description=_("parameters"))
    def parameters(self, obj):
        # Empty optional values mean "the method's default": left out rather than shown as blanks.
        return ", ".join(f"{k} = {v}" for k, v in (obj.params or {}).items() if v not in ("", None)) or "—"


class QuestionInline(_LiveInline, admin.StackedInline):
    model = Question
    form = QuestionForm

    def get_fieldsets(self, request, obj=None):
        per_language = [tuple(f"{part}__{code.replace('-', '_')}" for part in ("text", "low", "high"))
                        for code, _name in site_languages()]
        return [
            # One row per response format's own fields: the form's script hides those of other formats.
            (None, {"fields": [("order", "kind", "dimension"), "scale_points", "n_candidates",
                               ("pair_design", "min_exposure"), ("show_style", "show_content")]}),
            (_("Wording per language"), {"fields": per_language}),
        ]


class BackgroundQuestionInline(_LiveInline, admin.StackedInline):
    model = BackgroundQuestion
    form = BackgroundQuestionForm
    classes = ["collapse"]

    def get_fieldsets(self, request, obj=None):
        texts = [f"text__{code.replace('-', '_')}" for code, _name in site_languages()]
        return [(None, {"fields": [("order", "key", "kind", "required"), *texts, "choices_text"]})]


class ParticipantGroupInline(_LiveInline, admin.StackedInline):
    model = ParticipantGroup
    form = ParticipantGroupForm

    class Media:
        css = {"all": ["studies/admin.css"]}
    fields = [("slug", "name"), ("culture", "quota"), "eligibility_answers"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # The eligibility editor lists this study's background answers.
        formset.form = type("StudyGroupForm", (formset.form,), {
            "__init__": lambda self, *a, **kw: ParticipantGroupForm.__init__(self, *a, study=obj, **kw),
        })
        return formset

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and obj.is_frozen:
            fields = [f if f != "eligibility" else "eligibility_rule" for f in fields]
        return fields

    def get_fields(self, request, obj=None):
        if obj is not None and obj.is_frozen:
            return [("slug", "name"), ("culture", "quota"), "eligibility_rule"]
        return self.fields

    @admin.display(description=_("eligibility"))
    def eligibility_rule(self, obj):
        return _eligibility_rule(obj)


def _eligibility_rule(group: ParticipantGroup | None) -> str:
    """A group's frozen eligibility rule as shown read-only on a live study."""
    return json.dumps(group.eligibility, ensure_ascii=False) if group and group.pk else "—"


@admin.register(Study)
class StudyAdmin(StudyErasureMixin, OwnedAdmin):
    study_path = "pk"
    list_display = ["title", "status", "n_contents", "n_styles", "n_methods", "progress", "created_at"]
    list_filter = ["status"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    readonly_fields = ["status", "config_hash", "created_at", "live_at", "closed_at", "links"]
    filter_horizontal = ["owners"]
    form = StudyForm
    inlines = [MethodConfigInline, QuestionInline, BackgroundQuestionInline, ParticipantGroupInline]
    actions = ["generate_candidates", "compute_metrics", "retry_failed", "cancel_generation", "go_live", "close",
               "duplicate", "export_design", "build_report"]
    change_list_template = "admin/studies/study/change_list.html"

    def get_fieldsets(self, request, obj=None):
        texts = [[f"text_{key}__{code.replace('-', '_')}" for code, _name in site_languages()]
                 for key, _label in STUDY_TEXTS]
        return [
            (None, {"fields": ["title", "slug", "description", "owners"]
                    + (["status", "links"] if obj is not None else [])}),
            (_("Languages and texts participants read"), {"fields": ["languages", "default_language",
                                                                     *[f for group in texts for f in group]]}),
            (_("Stimuli"), {"fields": ["image_size", "seeds"]}),
            (_("Session"), {"fields": ["trials_per_participant", "session_timeout_minutes",
                                       "max_attention_failures", "closes_at"]}),
            (_("Recruitment"), {"fields": ["completion_url", "screenout_url", "completion_code"]}),
            *([(_("Record"), {"fields": ["config_hash", "created_at", "live_at", "closed_at"]})] if obj else []),
        ]

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None and obj.is_frozen else super().get_prepopulated_fields(request, obj)

    def get_changeform_initial_data(self, request):
        # A new study: its author owns it, in the site's default language.
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("owners", [request.user.pk])
        initial.setdefault("languages", [settings.LANGUAGE_CODE])
        initial.setdefault("default_language", settings.LANGUAGE_CODE)
        initial.setdefault("image_size", 256)
        return initial

    def save_model(self, request, obj, form, change):
        do_save_live_edit(obj, user=request.user)

    def save_formset(self, request, form, formset, change):
        if not (change and form.instance.is_frozen):
            return super().save_formset(request, form, formset, change)
        formset.new_objects, formset.deleted_objects, formset.changed_objects = [], [], []
        for inline_form in formset.forms:
            if inline_form.instance.pk and inline_form.has_changed():
                do_save_live_edit(inline_form.instance, user=request.user)
                formset.changed_objects.append((inline_form.instance, inline_form.changed_data))
        return None

    def get_queryset(self, request):
        # Counts for the list columns as subqueries: one query for the page, and
        # no contents × styles × methods join product.
        def count(model):
            rows = model.objects.filter(study=OuterRef("pk")).order_by().values("study").annotate(n=Count("pk"))
            return Coalesce(Subquery(rows.values("n"), output_field=IntegerField()), 0)

        return super().get_queryset(request).annotate(
            _contents=count(ContentImage), _styles=count(StyleImage), _methods=count(MethodConfig)
        )

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.is_frozen:
            fields += list(Study.FROZEN_FIELDS)
        return fields

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "owners":
            from django.contrib.auth import get_user_model

            kwargs["queryset"] = get_user_model().objects.filter(is_staff=True, is_active=True)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Whoever creates a study owns it, so it never drops out of their list.
        if not form.instance.owners.filter(pk=request.user.pk).exists() and not change:
            form.instance.owners.add(request.user)
        if not change and not form.instance.background_questions.exists():
            do_add_default_background_questions(form.instance)

    @admin.display(description=_("contents"))
    def n_contents(self, obj):
        return obj._contents

    @admin.display(description=_("styles"))
    def n_styles(self, obj):
        return obj._styles

    @admin.display(description=_("methods"))
    def n_methods(self, obj):
        return obj._methods

    @admin.display(description=_("progress"))
    def progress(self, obj):
        url = reverse("admin:studies_study_progress", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("progress"))

    @admin.display(description=_("pages"))
    def links(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        add_method = reverse("admin:studies_methodconfig_add") + f"?study={obj.pk}"
        return format_html(
            '<a href="{}">{}</a> · <a href="{}" id="add-method">{}</a> · <a href="{}">{}</a> · '
            '<a href="{}">{}</a> · <a href="{}" id="checklist-link">{}</a> · <a href="{}" id="run-panel-link">{}</a>',
            reverse("admin:studies_study_upload", args=[obj.pk]), _("upload images"),
            add_method, _("add a method"),
            reverse("admin:studies_study_progress", args=[obj.pk]), _("generation progress"),
            reverse("admin:studies_study_preview", args=[obj.pk]), _("preview grid"),
            reverse("admin:studies_study_checklist", args=[obj.pk]), _("go-live checklist"),
            reverse("admin:studies_study_run", args=[obj.pk]), _("run panel"),
        )

    # Custom pages -----------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:study_id>/upload/", view(self.upload_view), name="studies_study_upload"),
            path("<int:study_id>/progress/", view(self.progress_view), name="studies_study_progress"),
            path("<int:study_id>/preview/", view(self.preview_view), name="studies_study_preview"),
            path("<int:study_id>/checklist/", view(self.checklist_view), name="studies_study_checklist"),
            path("<int:study_id>/run/", view(self.run_view), name="studies_study_run"),
            path("import-design/", view(self.import_design_view), name="studies_study_import_design"),
        ] + super().get_urls()

    def _context(self, request, study, title):
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "study": study,
            "title": title,
            "original": study,
        }

    def upload_view(self, request, study_id: int):
        study = access_study_for_user(request.user, study_id)
        if not self.has_change_permission(request, study):
            raise PermissionDenied
        form = BulkUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            files = [(f.name, f.read()) for f in form.cleaned_data["files"]]
            try:
                report = do_import_images(
                    study, files, kind=form.cleaned_data["kind"], culture=form.cleaned_data.get("culture"),
                    fields=form.row_fields(),
                )
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                level = messages.WARNING if report.rejected else messages.SUCCESS
                self.message_user(request, report.summary(), level)
                return HttpResponseRedirect(request.path)
        styles = study.style_images.values("culture__name").annotate(n=Count("id")).order_by("culture__name")
        context = {**self._context(request, study, _("Upload images to %(study)s") % {"study": study}), "form": form,
                   "n_contents": study.content_images.count(),
                   "styles_by_culture": [(row["culture__name"], row["n"]) for row in styles],
                   "has_cultures": CultureTag.objects.exists()}
        return render(request, "admin/studies/study/upload.html", context)

    def progress_view(self, request, study_id: int):
        study = access_study_for_user(request.user, study_id)
        progress = study_progress(study)
        checklist = check_go_live(study) if not study.is_frozen else None
        context = {
            **self._context(request, study, _("Generation progress: %(study)s") % {"study": study}),
            "progress": progress,
            "checklist": checklist,
            "still_running": _work_in_progress(study, progress),
            "n_scored": MetricValue.objects.filter(candidate__study=study).values("candidate_id").distinct().count(),
            "eta_text": _duration(progress["eta"].total_seconds()) if progress["eta"] else "",
        }
        return TemplateResponse(request, "admin/studies/study/progress.html", context)

    def preview_view(self, request, study_id: int):
        study = access_study_for_user(request.user, study_id)
        try:
            page = max(int(request.GET.get("page", 1)), 1)
        except ValueError:
            page = 1
        context = {
            **self._context(request, study, _("Preview: %(study)s") % {"study": study}),
            **preview_page(study, page),
        }
        return TemplateResponse(request, "admin/studies/study/preview.html", context)

    def checklist_view(self, request, study_id: int):
        """The go-live checklist; its form goes live (confirming warnings) when nothing blocks."""
        study = access_study_for_user(request.user, study_id)
        if request.method == "POST":
            if not self.has_change_permission(request, study):
                raise PermissionDenied
            try:
                study = do_go_live(study, confirm_warnings=request.POST.get("confirm_warnings") == "on")
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(request, _("%(study)s is live; configuration hash %(hash)s.")
                                  % {"study": study, "hash": study.config_hash[:12]}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:studies_study_run", args=[study.pk]))
        checklist = check_go_live(study)
        minutes, seconds = divmod(checklist.summary.seconds, 60)
        context = {
            **self._context(request, study, _("Go-live checklist: %(study)s") % {"study": study}),
            "checklist": checklist,
            "session_length": _("%(minutes)d min %(seconds)02d s") % {"minutes": minutes, "seconds": seconds},
        }
        return TemplateResponse(request, "admin/studies/study/checklist.html", context)

    def run_view(self, request, study_id: int):
        """The run panel: links for recruiters, completion code, counts per group, preview."""
        study = access_study_for_user(request.user, study_id)
        link = request.build_absolute_uri(reverse("studies:participant_entry", args=[study.slug]))
        statuses = ["in_progress", "completed", "screened_out", "excluded", "expired", "consented"]
        rows = (Participant.objects.filter(study=study, is_preview=False)
                .values("group__name", "status").annotate(n=Count("pk")))
        counts: dict[str, dict[str, int]] = {g.name: dict.fromkeys(statuses, 0)
                                             for g in study.participant_groups.order_by("slug")}
        for row in rows:
            name = row["group__name"] or _("(no group yet or screened out)")
            counts.setdefault(name, dict.fromkeys(statuses, 0))[row["status"]] = row["n"]
        for by_status in counts.values():
            by_status["started"] = sum(by_status.values())
        quotas = dict(study.participant_groups.values_list("name", "quota"))
        context = {
            **self._context(request, study, _("Run panel: %(study)s") % {"study": study}),
            "participant_link": link,
            "prolific_template": f"{link}?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}&STUDY_ID={{{{%STUDY_ID%}}}}"
                                 f"&SESSION_ID={{{{%SESSION_ID%}}}}",
            "generic_template": f"{link}?participant_label=<PARTICIPANT_ID>",
            "counts": [(name, quotas.get(name), c) for name, c in counts.items()],
            "n_preview": Participant.objects.filter(study=study, is_preview=True).count(),
            "preview_url": f"{link}?preview=1",
            "live_edits": study.live_edits.order_by("-changed_at")[:20],
        }
        return TemplateResponse(request, "admin/studies/study/run.html", context)

    def import_design_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DesignImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                study = do_import_design(form.cleaned_data["design"], owner=request.user,
                                         title=form.cleaned_data["title"])
            except ValidationError as exc:
                form.add_error("design", " ".join(exc.messages))
            else:
                self.message_user(request, _("Imported as the draft “%(study)s”; upload its images next.")
                                  % {"study": study}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:studies_study_change", args=[study.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": _("Import a study design")}
        return TemplateResponse(request, "admin/studies/study/import_design.html", context)

    # Actions ----------------------------------------------------------------

    def _each(self, request, queryset, fn, done_message):
        for study in queryset:
            try:
                result = fn(study)
            except ValidationError as exc:
                self.message_user(request, f"{study}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"{study}: {done_message(result)}", messages.SUCCESS)

    @admin.action(description=_("Generate candidates"), permissions=["change"])
    def generate_candidates(self, request, queryset):
        self._each(request, queryset, do_queue_generation,
                   lambda r: f"{r['created']} new candidate(s), {r['queued']} queued in {r['tasks']} task(s)")

    @admin.action(description=_("Compute metrics"), permissions=["change"])
    def compute_metrics(self, request, queryset):
        self._each(request, queryset, do_queue_scoring,
                   lambda r: f"scoring {r['candidates']} candidate(s) in {r['tasks']} task(s)")

    @admin.action(description=_("Retry failed candidates"), permissions=["change"])
    def retry_failed(self, request, queryset):
        self._each(request, queryset, do_retry_failed, lambda r: f"{r['queued']} candidate(s) queued again")

    @admin.action(description=_("Cancel generation"), permissions=["change"])
    def cancel_generation(self, request, queryset):
        self._each(request, queryset, do_cancel, lambda r: f"{r['cancelled']} candidate(s) cancelled")

    @admin.action(description=_("Go live (checklist first; freezes the design)"), permissions=["change"])
    def go_live(self, request, queryset):
        if queryset.count() == 1:
            # One study: its checklist page, where warnings are confirmed.
            return HttpResponseRedirect(reverse("admin:studies_study_checklist", args=[queryset.get().pk]))
        self._each(request, queryset, do_go_live, lambda s: f"live; configuration hash {s.config_hash[:12]}")
        return None

    @admin.action(description=_("Duplicate (design only, as a new draft)"), permissions=["view"])
    def duplicate(self, request, queryset):
        if not self.has_add_permission(request):
            raise PermissionDenied
        self._each(request, queryset, lambda s: do_duplicate_study(s, owner=request.user),
                   lambda copy: f"copied to the draft “{copy.title}” ({copy.slug})")

    @admin.action(description=_("Export design (JSON)"), permissions=["view"])
    def export_design(self, request, queryset):
        documents = [design_document(s) for s in queryset]
        body = json.dumps(documents[0] if len(documents) == 1 else documents, indent=2, ensure_ascii=False,
                          default=str)
        response = HttpResponse(body, content_type="application/json")
        name = queryset.first().slug if len(documents) == 1 else "studies"
        response["Content-Disposition"] = f'attachment; filename="{name}-design.json"'
        return response

    @admin.action(description=_("Close to new participants"), permissions=["change"])
    def close(self, request, queryset):
        self._each(request, queryset, do_close, lambda s: "closed")

    @admin.action(description=_("Build statistical report (runs in the background)"), permissions=["view"])
    def build_report(self, request, queryset):
        self._each(request, queryset, lambda s: do_request_report(s, requested_by=request.user.get_username()),
                   lambda r: f"report {r.pk} queued; follow it under Study reports")


def _duration(seconds: float) -> str:
    """``"about 3 min"``, ``"1 h 05 min"``, ``"40 s"``: durations for people."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _work_in_progress(study: Study, progress: dict) -> bool:
    """Generation or scoring still running: the progress page keeps refreshing."""
    from datetime import timedelta

    from django.utils import timezone

    if progress["by_status"]["queued"] or progress["by_status"]["running"]:
        return True
    done = study.candidates.filter(status=Candidate.Status.DONE)
    unscored = done.exclude(pk__in=MetricValue.objects.filter(candidate__study=study).values("candidate_id"))
    recent = timezone.now() - timedelta(minutes=5)
    active = (MetricValue.objects.filter(candidate__study=study, computed_at__gte=recent).exists()
              or done.filter(finished_at__gte=recent).exists())
    return unscored.exists() and active


@admin.register(CultureTag)
class CultureTagAdmin(admin.ModelAdmin):
    """Culture tags are shared by every study: superusers manage them, researchers choose among them.

    A researcher renaming a tag would change other researchers' live studies
    (their configuration, exports and reports) without their knowledge.
    """

    list_display = ["slug", "name"]
    search_fields = ["slug", "name"]

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        # A tag a live or closed study uses is part of its frozen design.
        in_use = obj is not None and frozen_studies_using_culture(obj.pk).exists()
        return request.user.is_superuser and not in_use

    def delete_queryset(self, request, queryset):
        used = [tag for tag in queryset if frozen_studies_using_culture(tag.pk).exists()]
        if used:
            self.message_user(request, _("Not deleted, used by a live or closed study: %(tags)s.")
                              % {"tags": ", ".join(t.slug for t in used)}, messages.ERROR)
        super().delete_queryset(request, queryset.exclude(pk__in=[t.pk for t in used]))


# --- Stimuli and methods --------------------------------------------------------


class _ImageAdmin(FrozenAwareAdmin):
    list_select_related = ["study"]
    readonly_fields = ["preview", "sha256", "width", "height", "original_filename", "uploaded_at"]
    search_fields = ["title", "original_filename", "sha256"]

    @admin.display(description=_("image"))
    def thumb(self, obj):
        return _thumb(obj.thumbnail or obj.image)

    @admin.display(description=_("preview"))
    def preview(self, obj):
        return _thumb(obj.image, 384)

    def has_add_permission(self, request):
        return False  # through the study's upload page (validation, de-duplication)


@admin.register(ContentImage)
class ContentImageAdmin(_ImageAdmin):
    list_display = ["thumb", "__str__", "study", "category", "width", "height"]
    list_filter = ["study"]
    fields = ["study", "title", "category", "source", "license", *_ImageAdmin.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "study"]


@admin.register(StyleImage)
class StyleImageAdmin(_ImageAdmin):
    list_display = ["thumb", "__str__", "study", "culture", "artist", "year"]
    list_filter = ["study", "culture"]
    list_select_related = ["study", "culture"]
    fields = ["study", "culture", "title", "artist", "year", "source", "license", *_ImageAdmin.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "study"]


@admin.register(MethodConfig)
class MethodConfigAdmin(FrozenAwareAdmin):
    form = MethodConfigForm
    list_display = ["label", "study", "method", "family", "params"]
    list_filter = ["study", "method"]
    list_select_related = ["study"]

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return [(None, {"fields": ["study", "label", "method", "family", "params"]})]
        form = self.get_form(request, obj)(instance=obj)
        return [(None, {"fields": ["study", "label", "method", "family"]}), *form.method_fieldsets()]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # Parameter fields are added by the form itself, per method.
        kwargs["fields"] = ["study", "label", "method", "family"]
        return super().get_form(request, obj, change=change, **kwargs)

    def response_add(self, request, obj, post_url_continue=None):
        if "_addanother" in request.POST or "_continue" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, _("Method “%(label)s” added.") % {"label": obj.label}, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:studies_study_change", args=[obj.study_id]))


@admin.register(Candidate)
class CandidateAdmin(OwnedAdmin):
    list_display = ["thumb", "__str__", "status", "attempts", "worker", "took", "finished_at"]
    list_filter = ["status", "study", "method_config__method"]
    list_select_related = ["study", "content", "style", "method_config"]
    search_fields = ["error", "worker"]
    readonly_fields = ["study", "content", "style", "method_config", "seed", "status", "preview", "error",
                       "provenance", "attempts", "worker", "seconds", "created_at", "queued_at", "started_at",
                       "heartbeat_at", "finished_at"]
    fields = readonly_fields
    actions = ["retry_selected", "cancel_selected"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("image"))
    def thumb(self, obj):
        return _thumb(obj.image)

    @admin.display(description=_("generation time"), ordering="seconds")
    def took(self, obj):
        return "—" if obj.seconds is None else f"{obj.seconds:,.1f} s"

    @admin.display(description=_("image"))
    def preview(self, obj):
        return _thumb(obj.image, 512)

    @admin.action(description=_("Retry selected failed/cancelled candidates"), permissions=["change"])
    def retry_selected(self, request, queryset):
        try:
            result = do_requeue_candidates(queryset)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, _("%(n)d candidate(s) queued again.") % {"n": result["queued"]})

    @admin.action(description=_("Cancel selected queued/running candidates"), permissions=["change"])
    def cancel_selected(self, request, queryset):
        result = do_cancel_candidates(queryset)
        self.message_user(request, _("%(n)d candidate(s) cancelled.") % {"n": result["cancelled"]})


@admin.register(MetricValue)
class MetricValueAdmin(OwnedAdmin):
    study_path = "candidate__study"
    list_display = ["candidate", "name", "version", "value", "unavailable_reason", "computed_at"]
    list_filter = ["name", "candidate__study"]
    list_select_related = ["candidate__method_config", "candidate__content", "candidate__style"]
    readonly_fields = ["candidate", "name", "version", "value", "unavailable_reason", "computed_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SetMetricValue)
class SetMetricValueAdmin(OwnedAdmin):
    """FID, KID and ArtFID of one method's candidates for one culture's styles (read-only)."""

    list_display = ["name", "method_config", "culture", "value", "n_images", "version", "unavailable_reason",
                    "computed_at"]
    list_filter = ["name", "study"]
    list_select_related = ["method_config", "culture"]
    readonly_fields = ["study", "method_config", "culture", "name", "version", "value", "n_images",
                       "unavailable_reason", "computed_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Question)
class QuestionAdmin(LiveEditAdmin):
    form = QuestionForm
    list_display = ["__str__", "study", "order"]
    list_filter = ["study", "kind", "dimension"]
    list_select_related = ["study"]


@admin.register(GanTrainingRun)
class GanTrainingRunAdmin(OwnedAdmin):
    """GAN training runs: set up here, trained by a GPU worker; progress is read-only."""

    form = GanTrainingRunForm
    list_display = ["label", "study", "model", "status", "iteration", "total_iterations", "eta", "worker"]
    list_filter = ["status", "model", "study"]
    list_select_related = ["study"]
    progress_fields = ["status", "cancel_requested", "iteration", "total_iterations", "losses",
                       "seconds_per_iteration", "eta_seconds", "sample_preview", "loss_curves", "data_warnings",
                       "method_configs_made", "checkpoint", "generator",
                       "error", "worker", "created_at", "started_at", "heartbeat_at", "finished_at"]
    actions = ["request_cancel", use_as_method]

    def get_fields(self, request, obj=None):
        return ["study", "label", "model", "cultures", "config"] + (self.progress_fields if obj else [])

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["study", "label", "model", "cultures", "config", *self.progress_fields]

    @admin.display(description=_("time left"), ordering="eta_seconds")
    def eta(self, obj):
        return "—" if obj.eta_seconds is None else _duration(obj.eta_seconds)

    @admin.display(description=_("latest samples"))
    def sample_preview(self, obj):
        return _thumb(obj.sample_grid, 512)

    @admin.display(description=_("loss curves"))
    def loss_curves(self, obj):
        return loss_curves_svg(obj.loss_history)

    @admin.display(description=_("training data"))
    def data_warnings(self, obj):
        return "\n".join(data_size_warnings(obj.study, obj.cultures, obj.config)) or _("enough images")

    @admin.display(description=_("used as methods"))
    def method_configs_made(self, obj):
        return ", ".join(mc.label for mc in obj.method_configs.all()) or "—"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            warn_about_data_size(self, request, obj)
            do_start_training_run(obj)

    @admin.action(description=_("Request cancel of selected runs"), permissions=["change"])
    def request_cancel(self, request, queryset):
        n = do_request_cancel(queryset)
        self.message_user(request, _("Cancel requested for %(n)d run(s).") % {"n": n})


@admin.register(StudyReport)
class StudyReportAdmin(OwnedAdmin):
    """Report jobs (built on the cpu queue); the files are served through the checked media URLs."""

    list_display = ["study", "status", "progress", "message", "requested_by", "created_at", "finished_at"]
    list_filter = ["status", "study"]
    list_select_related = ["study"]
    fields = readonly_fields = ["study", "requested_by", "status", "progress", "message", "html", "archive",
                                "archive_contents", "summary_text", "error", "created_at", "finished_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # Reports an erasure deleted (a withdrawal, say) are named here, with the reason.
        notify_deleted_reports(self, request)
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("in the archive"))
    def archive_contents(self, obj):
        """The files of the zip (the PDF and the data exports are only there), so nobody has to guess."""
        if not obj.archive:
            return "—"
        try:
            with obj.archive.open("rb") as handle, zipfile.ZipFile(handle) as archive:
                names = archive.namelist()
        except (OSError, zipfile.BadZipFile) as exc:
            return _("cannot be read: %(error)s") % {"error": exc}
        return ", ".join(names)

    @admin.display(description=_("summary"))
    def summary_text(self, obj):
        summary = obj.summary or {}
        if not summary:
            return "—"
        head = _("%(analysed)s of %(rows)s response rows analysed, %(participants)s participants, %(seconds)s s") % {
            "analysed": summary.get("rows_analysed", "?"), "rows": summary.get("rows", "?"),
            "participants": summary.get("participants", "?"), "seconds": summary.get("seconds", "?")}
        warnings = summary.get("warnings") or []
        if not warnings:
            return head
        return format_html("{}<ul>{}</ul>", head, format_html_join("", "<li>{}</li>", ((w,) for w in warnings)))


# --- Participant side (read-only except the study's configuration) ---------------


@admin.register(ParticipantGroup)
class ParticipantGroupAdmin(LiveEditAdmin):
    form = ParticipantGroupForm
    list_display = ["name", "study", "culture", "quota", "n_participants"]
    list_filter = ["study"]
    list_select_related = ["study", "culture"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _n=Count("participants", filter=Q(participants__status="completed", participants__is_preview=False))
        )

    @admin.display(description=_("completed participants"))
    def n_participants(self, obj):
        return obj._n

    def get_fields(self, request, obj=None):
        if self._frozen(obj):
            # The form has no eligibility editor on a live study: the rule is shown as it is.
            return ["study", "slug", "name", "culture", "quota", "eligibility_rule"]
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return [f if f != "eligibility" else "eligibility_rule" for f in fields]

    @admin.display(description=_("eligibility"))
    def eligibility_rule(self, obj):
        return _eligibility_rule(obj)


@admin.register(BackgroundQuestion)
class BackgroundQuestionAdmin(LiveEditAdmin):
    form = BackgroundQuestionForm
    list_display = ["key", "study", "kind", "required", "order"]
    list_filter = ["study"]


class _ReadOnlyAdmin(OwnedAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Participant)
class ParticipantAdmin(ParticipantErasureMixin, _ReadOnlyAdmin):
    list_display = ["__str__", "study", "group", "status", "is_preview", "language", "started_at", "completed_at"]
    list_filter = ["study", "status", "group", "is_preview"]
    list_select_related = ["study", "group"]
    exclude = ["token"]  # a participant's credential: never shown


@admin.register(Trial)
class TrialAdmin(_ReadOnlyAdmin):
    study_path = "participant__study"
    list_display = ["__str__", "question", "position", "is_practice", "attention_kind", "pair_selection", "shown_at"]
    list_filter = ["participant__study", "is_practice"]
    list_select_related = ["participant", "question"]


@admin.register(TrialItem)
class TrialItemAdmin(_ReadOnlyAdmin):
    study_path = "trial__participant__study"
    list_display = ["__str__", "candidate", "attention_image"]
    list_select_related = ["trial", "candidate__method_config", "candidate__content", "candidate__style"]


@admin.register(Response)
class ResponseAdmin(_ReadOnlyAdmin):
    study_path = "trial__participant__study"
    list_display = ["__str__", "value", "choice", "ranking", "client_rt_ms", "passed_attention", "submitted_at"]
    list_filter = ["trial__participant__study", "passed_attention"]
    list_select_related = ["trial__participant"]


@admin.register(LiveEdit)
class LiveEditAdmin_(_ReadOnlyAdmin):
    """The record of changes made while a study was live (also in the report's configuration appendix)."""

    list_display = ["changed_at", "study", "changed_by_name", "target", "field", "changes"]
    list_filter = ["study"]
    list_select_related = ["study"]
    readonly_fields = ["changes"]

    @admin.display(description=_("what changed (before → after)"))
    def changes(self, obj):
        """One line per entry that differs, so a changed label is not lost in the whole list."""
        return format_html("<ul class=\"live-edit-changes\">{}</ul>", format_html_join(
            "", "<li><code>{}</code> · {} → {}</li>",
            ((field, before or "—", after or "—") for field, before, after in obj.changes())))


# --- Researcher onboarding ------------------------------------------------------

User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class ResearcherUserAdmin(UserAdmin):
    """Django's user admin plus one action for superusers: make the selected users researchers."""

    actions = ["make_researchers"]

    def has_make_researcher_permission(self, request) -> bool:
        return request.user.is_superuser

    @admin.action(description=_("Make researchers (staff, researchers group)"), permissions=["make_researcher"])
    def make_researchers(self, request, queryset):
        for user in queryset:
            make_researcher(user)
        self.message_user(request, _("%(n)d user(s) are now researchers.") % {"n": queryset.count()},
                          messages.SUCCESS)
