"""Going live: the configuration hash, the checklist gate, and duplicating a study's design."""

from __future__ import annotations

import hashlib
import json

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from ..checklist import already_open, check_go_live
from ..models import (
    BackgroundQuestion,
    Candidate,
    ContentImage,
    CultureTag,
    MethodConfig,
    ParticipantGroup,
    Question,
    Study,
    StyleImage,
)


def compute_config_hash(study: Study) -> str:
    """SHA-256 of everything that defines what participants see and how they are placed.

    Images (by pixel hash), culture tags, method configurations, seeds, size
    and generated candidates; the questions' response formats, the background
    questions' keys and answer values, the groups' eligibility and cultures,
    and the design settings of the study. Wording, quotas, redirect URLs and
    the closing date are not part of it: they may change while live, and each
    change is recorded instead.
    """
    cultures = set(study.style_images.values_list("culture_id", flat=True))
    cultures |= set(study.participant_groups.exclude(culture=None).values_list("culture_id", flat=True))
    payload = {
        "image_size": study.image_size,
        "seeds": study.seeds,
        "design": {f: getattr(study, f) for f in Study.FROZEN_FIELDS if f not in ("image_size", "seeds")},
        "contents": sorted(study.content_images.values_list("sha256", flat=True)),
        "styles": sorted(
            [sha, culture] for sha, culture in study.style_images.values_list("sha256", "culture__slug")
        ),
        "culture_tags": sorted(CultureTag.objects.filter(pk__in=cultures).values_list("slug", "name")),
        "methods": sorted(
            [label, method, json.dumps(params, sort_keys=True), family]
            for label, method, params, family in study.method_configs.values_list("label", "method", "params", "family")
        ),
        "candidates": sorted(
            [content, style, label, seed, image]
            for content, style, label, seed, image in study.candidates.filter(status=Candidate.Status.DONE).values_list(
                "content__sha256", "style__sha256", "method_config__label", "seed", "image"
            )
        ),
        "questions": [
            [q.design_value(f) for f in Question.frozen_fields] for q in study.questions.order_by("order", "id")
        ],
        "background": [
            [bq.design_value(f) for f in BackgroundQuestion.frozen_fields]
            for bq in study.background_questions.order_by("order", "id")
        ],
        "groups": sorted(
            [slug, culture or "", json.dumps(rule, sort_keys=True)]
            for slug, culture, rule in study.participant_groups.values_list("slug", "culture__slug", "eligibility")
        ),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def check_can_go_live(study: Study) -> list[str]:
    """Reasons ``study`` cannot go live now (the checklist's errors; empty when it can)."""
    status = already_open(study)
    return [*([status] if status else []), *(f.message for f in check_go_live(study).errors)]


def do_go_live(study: Study, *, confirm_warnings: bool = False) -> Study:
    """Open ``study`` to participants and freeze its design (stores the config hash).

    Args:
        confirm_warnings: the researcher has seen the checklist's warnings
            (unfinished scoring, failed candidates, small quotas…) and goes on.

    Raises:
        ValidationError: a blocking checklist error (code ``not_ready``), or
            warnings not confirmed (code ``needs_confirmation``).
    """
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        status = already_open(study)
        if status:
            raise ValidationError(f"“{study.title}” cannot go live: {status}.", code="not_ready")
        checklist = check_go_live(study)
        if checklist.errors:
            problems = [f.message for f in checklist.errors]
            raise ValidationError(f"“{study.title}” cannot go live: {'; '.join(problems)}.", code="not_ready")
        if checklist.warnings and not confirm_warnings:
            problems = [f.message for f in checklist.warnings]
            raise ValidationError(
                f"“{study.title}” has warnings to confirm on its go-live checklist: {'; '.join(problems)}.",
                code="needs_confirmation",
            )
        study.config_hash = compute_config_hash(study)
        study.status = Study.Status.LIVE
        study.live_at = timezone.now()
        study.save(update_fields=["config_hash", "status", "live_at"])
    return study


def _free_slug(base: str) -> str:
    base = slugify(base)[:70] or "study"
    slug, n = base, 2
    while Study.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


_STUDY_COPY = (
    "description", "languages", "default_language", "texts", "image_size", "seeds", "trials_per_participant",
    "session_timeout_minutes", "max_attention_failures", "completion_url", "screenout_url", "completion_code",
)
_ROW_SKIP = {"id", "study", "study_id"}


def _copy_rows(model, rows, study: Study, **extra) -> dict[int, object]:
    copies = {}
    for row in rows:
        values = {f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields
                  if f.name not in _ROW_SKIP and f.attname not in _ROW_SKIP}
        values.update(extra)
        copy = model(study=study, **values)
        copy.save()
        copies[row.pk] = copy
    return copies


def do_duplicate_study(study: Study, *, owner, title: str | None = None) -> Study:
    """A new draft with ``study``'s design: texts, images, methods, questions, background, groups.

    Participants, candidates, metric values and reports are not copied;
    image files are shared by name (they are never changed in place).
    """
    with transaction.atomic():
        copy = Study(title=title or f"Copy of {study.title}"[:200], slug=_free_slug(f"{study.slug}-copy"),
                     **{f: getattr(study, f) for f in _STUDY_COPY})
        copy.full_clean()
        copy.save()
        copy.owners.add(owner)
        _copy_rows(ContentImage, study.content_images.all(), copy)
        _copy_rows(StyleImage, study.style_images.all(), copy)
        _copy_rows(MethodConfig, study.method_configs.all(), copy)
        _copy_rows(Question, study.questions.all(), copy)
        _copy_rows(BackgroundQuestion, study.background_questions.all(), copy)
        _copy_rows(ParticipantGroup, study.participant_groups.all(), copy)
    return copy
