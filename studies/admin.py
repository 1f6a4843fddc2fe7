"""The researcher's UI: studies, stimuli, methods, the generation pipeline, participants.

Every admin here limits rows to the studies the user owns (a superuser sees
all) through :mod:`studies.permissions`; custom views check access before
doing anything.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .actions import (
    check_can_go_live,
    do_cancel,
    do_cancel_candidates,
    do_close,
    do_go_live,
    do_import_images,
    do_queue_generation,
    do_queue_scoring,
    do_request_report,
    do_requeue_candidates,
    do_retry_failed,
    study_progress,
)
from .admin_erasure import ParticipantErasureMixin, StudyErasureMixin
from .admin_forms import BulkUploadForm, GanTrainingRunForm, MethodConfigForm
from .admin_scoping import owned_choices, owned_list_filters
from .models import (
    BackgroundQuestion,
    Candidate,
    ContentImage,
    CultureTag,
    GanTrainingRun,
    MethodConfig,
    MetricValue,
    Participant,
    ParticipantGroup,
    Question,
    Response,
    Study,
    StudyReport,
    StyleImage,
    Trial,
    TrialItem,
)
from .permissions import access_study_for_user, filter_owned
from .security import ThrottledAdminAuthenticationForm

# Sign-in attempts are throttled per user name and per address (studies.security).
admin.site.login_form = ThrottledAdminAuthenticationForm

# Preview grid rows (content × style pairs) per page: each row has one image per method.
PREVIEW_PAIRS = 40


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


class FrozenAwareAdmin(OwnedAdmin):
    """Stimuli and methods of a live or closed study become read-only."""

    def _frozen(self, obj) -> bool:
        return obj is not None and obj.study.is_frozen

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


# --- Studies ------------------------------------------------------------------


class MethodConfigInline(admin.TabularInline):
    model = MethodConfig
    fields = ["label", "method", "family", "params"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # added through the method form (parameter fields per method)


class QuestionInline(admin.StackedInline):
    model = Question
    extra = 0
    fields = ["order", "kind", "dimension", "texts", "scale_points", "scale_labels", "n_candidates",
              "pair_design", "min_exposure",
              "show_style", "show_content"]

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not (obj and obj.is_frozen)

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not (obj and obj.is_frozen)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj and obj.is_frozen)


class ParticipantGroupInline(admin.TabularInline):
    model = ParticipantGroup
    extra = 0
    fields = ["slug", "name", "culture", "eligibility", "quota"]


@admin.register(Study)
class StudyAdmin(StudyErasureMixin, OwnedAdmin):
    study_path = "pk"
    list_display = ["title", "status", "n_contents", "n_styles", "n_methods", "progress", "created_at"]
    list_filter = ["status"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    readonly_fields = ["status", "config_hash", "created_at", "live_at", "closed_at", "links"]
    filter_horizontal = ["owners"]
    inlines = [MethodConfigInline, QuestionInline, ParticipantGroupInline]
    actions = ["generate_candidates", "compute_metrics", "retry_failed", "cancel_generation", "go_live", "close",
               "build_report"]
    fieldsets = [
        (None, {"fields": ["title", "slug", "description", "owners", "status", "links"]}),
        (_("Stimuli"), {"fields": ["image_size", "seeds"]}),
        (_("Participants"), {"fields": ["languages", "default_language", "texts", "trials_per_participant",
                                        "session_timeout_minutes", "max_attention_failures"]}),
        (_("Recruitment"), {"fields": ["completion_url", "screenout_url", "completion_code"]}),
        (_("Record"), {"fields": ["config_hash", "created_at", "live_at", "closed_at"]}),
    ]

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
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("admin:studies_study_upload", args=[obj.pk]), _("upload images"),
            reverse("admin:studies_study_progress", args=[obj.pk]), _("generation progress"),
            reverse("admin:studies_study_preview", args=[obj.pk]), _("preview grid"),
        )

    # Custom pages -----------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:study_id>/upload/", view(self.upload_view), name="studies_study_upload"),
            path("<int:study_id>/progress/", view(self.progress_view), name="studies_study_progress"),
            path("<int:study_id>/preview/", view(self.preview_view), name="studies_study_preview"),
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
            from django.core.exceptions import PermissionDenied

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
        context = {**self._context(request, study, _("Upload images to %(study)s") % {"study": study}), "form": form}
        return render(request, "admin/studies/study/upload.html", context)

    def progress_view(self, request, study_id: int):
        study = access_study_for_user(request.user, study_id)
        context = {
            **self._context(request, study, _("Generation progress: %(study)s") % {"study": study}),
            "progress": study_progress(study),
            "go_live_problems": check_can_go_live(study),
        }
        return TemplateResponse(request, "admin/studies/study/progress.html", context)

    def preview_view(self, request, study_id: int):
        study = access_study_for_user(request.user, study_id)
        configs = list(study.method_configs.all())
        try:
            page = max(int(request.GET.get("page", 1)), 1)
        except ValueError:
            page = 1
        pairs = [
            (c, s) for s in study.style_images.select_related("culture") for c in study.content_images.all()
        ]
        shown = pairs[(page - 1) * PREVIEW_PAIRS : page * PREVIEW_PAIRS]
        cands = {
            (x.content_id, x.style_id, x.method_config_id): x
            for x in study.candidates.filter(
                seed=0, content_id__in={c.pk for c, _ in shown}, style_id__in={s.pk for _, s in shown}
            )
        }
        rows = [
            {"content": c, "style": s, "outputs": [cands.get((c.pk, s.pk, m.pk)) for m in configs]}
            for c, s in shown
        ]
        context = {
            **self._context(request, study, _("Preview: %(study)s") % {"study": study}),
            "configs": configs,
            "rows": rows,
            "page": page,
            "has_next": page * PREVIEW_PAIRS < len(pairs),
        }
        return TemplateResponse(request, "admin/studies/study/preview.html", context)

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

    @admin.action(description=_("Go live (freezes stimuli and methods)"), permissions=["change"])
    def go_live(self, request, queryset):
        self._each(request, queryset, do_go_live, lambda s: f"live; configuration hash {s.config_hash[:12]}")

    @admin.action(description=_("Close to new participants"), permissions=["change"])
    def close(self, request, queryset):
        self._each(request, queryset, do_close, lambda s: "closed")

    @admin.action(description=_("Build statistical report (runs in the background)"), permissions=["view"])
    def build_report(self, request, queryset):
        self._each(request, queryset, lambda s: do_request_report(s, requested_by=request.user.get_username()),
                   lambda r: f"report {r.pk} queued; follow it under Study reports")


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
        return request.user.is_superuser


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


@admin.register(Candidate)
class CandidateAdmin(OwnedAdmin):
    list_display = ["thumb", "__str__", "status", "attempts", "worker", "seconds", "finished_at"]
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


@admin.register(Question)
class QuestionAdmin(OwnedAdmin):
    list_display = ["__str__", "study", "order"]
    list_filter = ["study", "kind", "dimension"]
    list_select_related = ["study"]


@admin.register(GanTrainingRun)
class GanTrainingRunAdmin(OwnedAdmin):
    """GAN training runs: set up here, trained by a GPU worker; progress is read-only."""

    form = GanTrainingRunForm
    list_display = ["label", "study", "model", "status", "iteration", "total_iterations", "eta_seconds", "worker"]
    list_filter = ["status", "model", "study"]
    list_select_related = ["study"]
    progress_fields = ["status", "cancel_requested", "iteration", "total_iterations", "losses",
                       "seconds_per_iteration", "eta_seconds", "sample_preview", "checkpoint", "generator",
                       "error", "worker", "created_at", "started_at", "heartbeat_at", "finished_at"]
    actions = ["request_cancel"]

    def get_fields(self, request, obj=None):
        return ["study", "label", "model", "cultures", "config"] + (self.progress_fields if obj else [])

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["study", "label", "model", "cultures", "config", *self.progress_fields]

    @admin.display(description=_("latest samples"))
    def sample_preview(self, obj):
        return _thumb(obj.sample_grid, 512)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            from .tasks import train_gan_task

            train_gan_task.delay_on_commit(obj.pk)

    @admin.action(description=_("Request cancel of selected runs"), permissions=["change"])
    def request_cancel(self, request, queryset):
        n = queryset.filter(status__in=[GanTrainingRun.Status.QUEUED, GanTrainingRun.Status.RUNNING]).update(
            cancel_requested=True
        )
        self.message_user(request, _("Cancel requested for %(n)d run(s).") % {"n": n})


@admin.register(StudyReport)
class StudyReportAdmin(OwnedAdmin):
    """Report jobs (built on the cpu queue); the files are served through the checked media URLs."""

    list_display = ["study", "status", "progress", "message", "requested_by", "created_at", "finished_at"]
    list_filter = ["status", "study"]
    list_select_related = ["study"]
    readonly_fields = ["study", "requested_by", "status", "progress", "message", "archive", "html", "summary",
                       "error", "created_at", "finished_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- Participant side (read-only except the study's configuration) ---------------


@admin.register(ParticipantGroup)
class ParticipantGroupAdmin(OwnedAdmin):
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


@admin.register(BackgroundQuestion)
class BackgroundQuestionAdmin(OwnedAdmin):
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
    list_display = ["__str__", "question", "position", "is_practice", "attention_kind", "shown_at"]
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
