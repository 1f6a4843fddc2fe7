"""Erasure of participant data: withdrawal, researchers' erasure actions, study deletion.

Each function deletes the rows and writes one :class:`~studies.models.ErasureRecord`
in the same transaction, so an erasure without its audit entry (or the
reverse) cannot happen. Stored reports of the study hold copies of the data
(``responses.csv``), so they are deleted too; their files go after commit.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet

from ..access import pseudonymise
from ..models import (
    ErasureRecord,
    Participant,
    Response,
    Study,
    StudyReport,
    Trial,
    TrialItem,
)

#: Name recorded for erasures the participant asked for.
PARTICIPANT_ACTOR = "participant"


def _study_label(study: Study) -> str:
    return f"{study.title} ({study.slug})"[:300]


def _delete_reports(study: Study) -> int:
    """Delete the study's stored reports; their files are removed once the transaction commits."""
    reports = list(StudyReport.objects.filter(study=study))
    files = [f for r in reports for f in (r.archive, r.html) if f]
    names = [(f.storage, f.name) for f in files]
    StudyReport.objects.filter(pk__in=[r.pk for r in reports]).delete()

    def remove_files() -> None:
        for storage, name in names:
            storage.delete(name)

    transaction.on_commit(remove_files)
    return len(reports)


def _erase(
    study: Study, participants: QuerySet[Participant], *, scope: str, by: AbstractBaseUser | None
) -> ErasureRecord:
    counts = {
        "participants": participants.count(),
        "trials": Trial.objects.filter(participant__in=participants).count(),
        "trial_items": TrialItem.objects.filter(trial__participant__in=participants).count(),
        "responses": Response.objects.filter(trial__participant__in=participants).count(),
        "background_answers": participants.exclude(background={}).count(),
    }
    participants.delete()
    return ErasureRecord.objects.create(
        study=study,
        study_label=_study_label(study),
        scope=scope,
        performed_by=by if by is not None and by.is_authenticated else None,
        performed_by_name=by.get_username() if by is not None else PARTICIPANT_ACTOR,
        reports=_delete_reports(study) if counts["participants"] else 0,
        **counts,
    )


def do_withdraw(participant: Participant) -> ErasureRecord:
    """The participant withdraws: every answer, trial and background answer of theirs is deleted.

    Their place in the group (quota and design slot) is freed with the row.
    """
    with transaction.atomic():
        rows = Participant.objects.select_for_update().filter(pk=participant.pk)
        return _erase(participant.study, rows, scope=ErasureRecord.Scope.WITHDRAWAL, by=None)


def do_erase_participants(
    study: Study, participants: QuerySet[Participant], *, by: AbstractBaseUser
) -> ErasureRecord:
    """A researcher erases the selected participants of ``study`` (rows of other studies are left alone)."""
    with transaction.atomic():
        rows = Participant.objects.select_for_update().filter(
            pk__in=participants.filter(study=study).values("pk")
        )
        return _erase(study, rows, scope=ErasureRecord.Scope.PARTICIPANT, by=by)


def do_erase_by_recruiter_id(study: Study, external_id: str, *, by: AbstractBaseUser) -> ErasureRecord | None:
    """Erase the participant of ``study`` who arrived with recruiter id ``external_id`` (e.g. a Prolific id).

    The id is matched by its keyed hash, as stored; it is never stored in clear.

    Returns:
        The audit record, or None when no participant has that id.
    """
    external_id = (external_id or "").strip()
    if not external_id:
        return None
    with transaction.atomic():
        rows = Participant.objects.select_for_update().filter(
            study=study, external_id_hash=pseudonymise(study, external_id)
        )
        if not rows.exists():
            return None
        return _erase(study, rows, scope=ErasureRecord.Scope.RECRUITER_ID, by=by)


def do_erase_study_participants(study: Study, *, by: AbstractBaseUser) -> ErasureRecord:
    """Erase all participant data of ``study`` (sessions, trials, responses, background answers, reports)."""
    with transaction.atomic():
        rows = Participant.objects.select_for_update().filter(study=study)
        return _erase(study, rows, scope=ErasureRecord.Scope.STUDY, by=by)


def _study_files(study: Study) -> list[tuple]:
    """``(storage, name)`` of every stored file of ``study`` (images, candidates, training outputs)."""
    from ..models import Candidate, ContentImage, GanTrainingRun, StyleImage

    files = []
    for model, fields in (
        (ContentImage, ("image", "thumbnail")),
        (StyleImage, ("image", "thumbnail")),
        (Candidate, ("image",)),
        (GanTrainingRun, ("checkpoint", "generator", "sample_grid")),
    ):
        for row in model.objects.filter(study=study).only("pk", *fields):
            files += [(f.storage, f.name) for f in (getattr(row, name) for name in fields) if f]
    return files


def do_delete_study(study: Study, *, by: AbstractBaseUser) -> ErasureRecord:
    """Delete a study with everything in it; the audit record keeps its label and the counts.

    Files are removed from storage after the transaction commits (a rolled-back
    deletion keeps them).
    """
    with transaction.atomic():
        record = _erase(study, Participant.objects.filter(study=study), scope=ErasureRecord.Scope.STUDY_DELETED, by=by)
        reports = record.reports + _delete_reports(study)
        ErasureRecord.objects.filter(pk=record.pk).update(reports=reports)
        files = _study_files(study)
        study.delete()
        transaction.on_commit(lambda: [storage.delete(name) for storage, name in files])
    record.refresh_from_db()
    return record
