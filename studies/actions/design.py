"""A study's design as a JSON document: export for power users, import as a new draft."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import (
    BackgroundQuestion,
    CultureTag,
    MethodConfig,
    ParticipantGroup,
    Question,
    Study,
)
from .golive import _STUDY_COPY, _free_slug

DESIGN_FORMAT = "stylestudy-design"
DESIGN_VERSION = 1

_QUESTION_FIELDS = ("kind", "dimension", "texts", "scale_points", "scale_labels", "n_candidates", "pair_design",
                    "min_exposure", "show_style", "show_content", "order")
_BACKGROUND_FIELDS = ("key", "kind", "texts", "choices", "required", "order")
_GROUP_FIELDS = ("slug", "name", "eligibility", "quota")
_METHOD_FIELDS = ("label", "method", "params", "family")


def design_document(study: Study) -> dict[str, Any]:
    """Everything of ``study``'s design except image files (listed by pixel hash for reference)."""
    return {
        "format": DESIGN_FORMAT,
        "version": DESIGN_VERSION,
        "study": {"title": study.title, **{f: getattr(study, f) for f in _STUDY_COPY}},
        "methods": list(study.method_configs.values(*_METHOD_FIELDS)),
        "questions": list(study.questions.order_by("order", "id").values(*_QUESTION_FIELDS)),
        "background_questions": list(study.background_questions.order_by("order", "id").values(*_BACKGROUND_FIELDS)),
        "groups": [
            {**{k: row[k] for k in _GROUP_FIELDS}, "culture": row["culture__slug"]}
            for row in study.participant_groups.values(*_GROUP_FIELDS, "culture__slug")
        ],
        "images": {
            "content": list(study.content_images.values_list("sha256", flat=True)),
            "style": list(study.style_images.values_list("sha256", "culture__slug")),
        },
    }


def _pick(row: dict, fields: tuple[str, ...], where: str) -> dict:
    if not isinstance(row, dict):
        raise ValidationError(f"{where}: expected an object, got {type(row).__name__}.", code="invalid")
    unknown = set(row) - set(fields) - {"culture"}
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}.", code="invalid")
    return {k: row[k] for k in fields if k in row}


def do_import_design(document: dict[str, Any], *, owner, title: str = "") -> Study:
    """Create a draft study from a design document (images are uploaded afterwards).

    Raises:
        ValidationError: a wrong format, an unknown field or culture tag, or
            a row its model refuses (the message names where); nothing is created.
    """
    if document.get("format") != DESIGN_FORMAT:
        raise ValidationError("Not a stylestudy design document.", code="invalid")
    fields = _pick(document.get("study") or {}, ("title", *_STUDY_COPY), "study")
    title = title or fields.pop("title", "") or "Imported study"
    fields.pop("title", None)
    fields.setdefault("languages", [fields.get("default_language", "en")])
    with transaction.atomic():
        study = Study(title=title[:200], slug=_free_slug(title), **fields)
        try:
            study.full_clean()
        except ValidationError as exc:
            raise ValidationError(f"study: {'; '.join(exc.messages)}", code="invalid") from None
        study.save()
        study.owners.add(owner)
        rows = [
            (MethodConfig, document.get("methods") or [], _METHOD_FIELDS, "method"),
            (Question, document.get("questions") or [], _QUESTION_FIELDS, "question"),
            (BackgroundQuestion, document.get("background_questions") or [], _BACKGROUND_FIELDS,
             "background question"),
            (ParticipantGroup, document.get("groups") or [], _GROUP_FIELDS, "group"),
        ]
        for model, items, allowed, name in rows:
            for number, row in enumerate(items, start=1):
                values = _pick(row, allowed, f"{name} {number}")
                if model is ParticipantGroup and row.get("culture"):
                    try:
                        values["culture"] = CultureTag.objects.get(slug=row["culture"])
                    except CultureTag.DoesNotExist:
                        raise ValidationError(f"{name} {number}: no culture tag {row['culture']!r}.",
                                              code="invalid") from None
                obj = model(study=study, **values)
                try:
                    obj.full_clean()
                except ValidationError as exc:
                    raise ValidationError(f"{name} {number}: {'; '.join(exc.messages)}", code="invalid") from None
                obj.save()
    return study
