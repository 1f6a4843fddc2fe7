"""What the admin offers a researcher to choose or filter by: only values of their own studies.

Django's related-field list filter lists every row of the related model (every
study's title, every group's name), and a foreign-key select every row; both
are narrowed here to the rows the researcher's own studies reach.
"""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from .models import (
    Candidate,
    ContentImage,
    MethodConfig,
    Participant,
    ParticipantGroup,
    Question,
    Study,
    StyleImage,
    Trial,
    TrialItem,
)
from .permissions import filter_owned, studies_for_user

#: How each study-owned model reaches its study.
STUDY_PATHS: dict[type[models.Model], str] = {
    ContentImage: "study",
    StyleImage: "study",
    MethodConfig: "study",
    Candidate: "study",
    Question: "study",
    ParticipantGroup: "study",
    Participant: "study",
    Trial: "participant__study",
    TrialItem: "trial__participant__study",
}


def owned_choices(model: type[models.Model], user) -> models.QuerySet | None:
    """Rows of ``model`` that ``user`` may choose, or None for a model not owned through a study."""
    if model is Study:
        return studies_for_user(user)
    path = STUDY_PATHS.get(model)
    if path is None:
        return None
    return filter_owned(model._default_manager.all(), user, path)


class OwnedValuesListFilter(admin.AllValuesFieldListFilter):
    """Values of a field reached through a relation, taken only from the rows the admin shows."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = (
            model_admin.get_queryset(request).order_by(field_path).values_list(field_path, flat=True).distinct()
        )


def _is_relation_path(model: type[models.Model], path: str) -> tuple[bool, bool]:
    """``(ends in a relation, crosses a relation)`` for a list-filter field path."""
    parts = path.split("__")
    current = model
    for i, part in enumerate(parts):
        field = current._meta.get_field(part)
        if field.is_relation and field.related_model is not None:
            if i == len(parts) - 1:
                return True, i > 0
            current = field.related_model
        else:
            return False, i > 0
    return False, False


def owned_list_filters(model: type[models.Model], filters) -> list:
    """``filters`` with every related-field filter limited to the rows the admin shows."""
    out = []
    for entry in filters:
        if isinstance(entry, str):
            ends_in_relation, crosses = _is_relation_path(model, entry)
            if ends_in_relation:
                entry = (entry, admin.RelatedOnlyFieldListFilter)
            elif crosses:
                entry = (entry, OwnedValuesListFilter)
        out.append(entry)
    return out
