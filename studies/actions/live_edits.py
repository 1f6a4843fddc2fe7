"""Edits of a live study: only wording, redirects, quotas and the closing date, each one recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import models, transaction

from ..models import BackgroundQuestion, LiveEdit, ParticipantGroup, Question, Study


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """``("texts.en.consent", "…")`` pairs of nested dicts, so one changed text is one record."""
    if isinstance(value, dict) and value:
        for key in sorted(value, key=str):
            yield from _flatten(value[key], f"{prefix}.{key}")
    else:
        yield prefix, value


def _values(obj: models.Model) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in obj._meta.concrete_fields:
        if f.primary_key:
            continue
        value = f.value_from_object(obj)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif isinstance(value, models.fields.files.FieldFile):
            value = value.name
        out.update(_flatten(value, f.name))
    return out


def describe(obj: models.Model) -> str:
    """How a changed row is named in the record (never by database id alone)."""
    if isinstance(obj, Study):
        return "study"
    if isinstance(obj, Question):
        return f"question {obj.position}"
    if isinstance(obj, ParticipantGroup):
        return f"group {obj.slug}"
    if isinstance(obj, BackgroundQuestion):
        return f"background question {obj.key}"
    return f"{obj._meta.verbose_name} {obj}"


def changes(obj: models.Model) -> list[tuple[str, Any, Any]]:
    """``(field, before, after)`` of every field of ``obj`` that differs from the stored row."""
    stored = type(obj).objects.filter(pk=obj.pk).first() if obj.pk else None
    if stored is None:
        return []
    before, after = _values(stored), _values(obj)
    return [(k, before.get(k), after.get(k)) for k in sorted(before.keys() | after.keys())
            if before.get(k) != after.get(k)]


def do_save_live_edit(obj: models.Model, *, user=None) -> list[LiveEdit]:
    """Save ``obj`` (a study or a row of its design) and record what changed if the study is live.

    The design itself is refused by the models (``StudyFrozenError``); what
    may change is saved and recorded field by field, with who and when.

    Returns:
        The records written (empty for a draft study or an unchanged row).

    Raises:
        StudyFrozenError: a design field changed while live or closed.
    """
    study = obj if isinstance(obj, Study) else obj.study
    with transaction.atomic():
        stored_status = Study.objects.filter(pk=study.pk).values_list("status", flat=True).first()
        diff = changes(obj) if stored_status in (Study.Status.LIVE, Study.Status.CLOSED) else []
        obj.save()
        name = getattr(user, "get_username", lambda: "")() if user is not None else ""
        target = describe(obj)
        records = [
            LiveEdit(study_id=study.pk, changed_by=user if getattr(user, "pk", None) else None,
                     changed_by_name=name, target=target, field=field, before=before, after=after)
            for field, before, after in diff
        ]
        LiveEdit.objects.bulk_create(records)
    return records
