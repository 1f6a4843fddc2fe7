"""Who may see which study: the one place researcher access is decided.

A researcher (a staff user) sees and edits only the studies they own; a
superuser sees all. Admin querysets, custom admin views, exports and media
URLs all go through these helpers.
"""

from __future__ import annotations

import re

from django.contrib.auth.models import (
    AbstractBaseUser,
    AnonymousUser,
    Group,
    Permission,
)
from django.db.models import Model, QuerySet
from django.http import Http404

from .models import Study

RESEARCHER_GROUP = "researchers"
# Models a researcher may change in the admin (ownership still limits which rows).
_RESEARCHER_EDITS = (
    "study", "contentimage", "styleimage", "methodconfig", "question",
    "participantgroup", "backgroundquestion", "gantrainingrun",
)
# Models a researcher may only view. Culture tags are shared by all studies: superusers manage them.
_RESEARCHER_VIEWS = ("candidate", "metricvalue", "participant", "trial", "trialitem", "response", "studyreport",
                     "culturetag", "erasurerecord")

_MEDIA_STUDY = re.compile(r"^studies/(?P<study_id>\d+)/")

User = AbstractBaseUser | AnonymousUser


def studies_for_user(user: User) -> QuerySet[Study]:
    """Studies ``user`` may see: all for a superuser, owned ones for staff, none otherwise."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return Study.objects.none()
    if user.is_superuser:
        return Study.objects.all()
    if not user.is_staff:
        return Study.objects.none()
    return Study.objects.filter(owners=user)


def can_access_study(user: User, study: Study | int | None) -> bool:
    """Whether ``user`` may see ``study`` (an instance or a primary key)."""
    if study is None:
        return False
    pk = study.pk if isinstance(study, Study) else study
    return studies_for_user(user).filter(pk=pk).exists()


def access_study_for_user(user: User, study_id: int | str) -> Study:
    """The study with ``study_id`` if ``user`` may see it.

    Raises:
        Http404: no such study, or not one of the user's (the two are not told
            apart, so ids of other researchers' studies leak nothing).
    """
    try:
        return studies_for_user(user).get(pk=int(study_id))
    except (Study.DoesNotExist, ValueError, TypeError):
        raise Http404("No such study.") from None


def filter_owned(queryset: QuerySet, user: User, study_path: str) -> QuerySet:
    """Restrict ``queryset`` to rows whose study (reached by ``study_path``) ``user`` may see."""
    if getattr(user, "is_superuser", False) and user.is_active:
        return queryset
    return queryset.filter(**{f"{study_path}__in": studies_for_user(user)})


def access_media_for_user(user: User, name: str) -> Study:
    """The study a stored file belongs to, if ``user`` may see it.

    Media names are ``studies/<study id>/…`` (see the ``upload_to`` functions).

    Raises:
        Http404: a name outside a study folder, or a study the user may not see.
    """
    match = _MEDIA_STUDY.match(name)
    if match is None or ".." in name.split("/"):
        raise Http404("No such file.")
    return access_study_for_user(user, match["study_id"])


def ensure_researcher_group() -> Group:
    """The ``researchers`` group with the admin permissions researchers need."""
    group, _ = Group.objects.get_or_create(name=RESEARCHER_GROUP)
    codenames = [f"{action}_{model}" for model in _RESEARCHER_EDITS for action in ("add", "change", "delete", "view")]
    codenames += [f"view_{model}" for model in _RESEARCHER_VIEWS]
    codenames += ["change_candidate"]  # admin actions (retry, cancel) on candidates
    codenames += ["delete_studyreport"]
    perms = Permission.objects.filter(content_type__app_label="studies", codename__in=codenames)
    group.permissions.set(perms)
    return group


def make_researcher(user: Model) -> Model:
    """Make ``user`` a staff member of the researchers group."""
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.groups.add(ensure_researcher_group())
    return user
