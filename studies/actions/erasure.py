"""Erasure of participant data: withdrawal, researchers' erasure actions, study deletion.

Each function deletes the rows and writes one :class:`~studies.models.ErasureRecord`
in the same transaction, so an erasure without its audit entry (or the
reverse) cannot happen. Stored reports hold copies of the data
(``responses.csv``, the HTML and PDF): those that hold, or may hold, the erased
participants' data are deleted too (:func:`delete_reports_holding`, one rule for
withdrawal and every researcher's erasure), named with the reason in the audit
entry; their files go after commit.
"""

from __future__ import annotations

from collections.abc import Collection

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet

from ..access import pseudonymise
from ..models import (
    Candidate,
    ContentImage,
    ErasureRecord,
    GanTrainingRun,
    MethodConfig,
    Participant,
    Response,
    Study,
    StudyReport,
    StyleImage,
    Trial,
    TrialItem,
)

#: Name recorded for erasures the participant asked for.
PARTICIPANT_ACTOR = "participant"


def _study_label(study: Study) -> str:
    return f"{study.title} ({study.slug})"[:300]


def _delete_reports(reports: list[tuple[StudyReport, str]]) -> list[dict]:
    """Delete ``(report, reason)`` pairs; their files are removed once the transaction commits.

    Returns:
        The erasure record's entries: id, when the report was requested, why it was deleted.
    """
    names = [(f.storage, f.name) for report, _reason in reports for f in (report.archive, report.html) if f]
    StudyReport.objects.filter(pk__in=[report.pk for report, _reason in reports]).delete()

    def remove_files() -> None:
        for storage, name in names:
            storage.delete(name)

    transaction.on_commit(remove_files)
    return [{"id": report.pk, "requested": report.created_at.isoformat(), "reason": reason}
            for report, reason in reports]


def delete_reports_holding(study: Study, participant_ids: Collection[int]) -> list[dict]:
    """Delete the stored reports of ``study`` that hold, or may hold, data of ``participant_ids``.

    Call it inside the erasure's transaction, after the participants' rows are deleted. A report
    is kept only when it provably holds none of their data:

    * it is still queued: it reads the data when it runs, after this erasure commits (its row is
      locked here until then — on SQLite the whole database, already written to — so no worker
      claims it and reads the data before);
    * it was built and recorded the participants with rows in its files
      (:attr:`~studies.models.StudyReport.participant_ids`), none of them erased — e.g. a report
      built before the participant's first response.

    Every other report is deleted: one built from their responses, one running, failed or
    cancelled (it may have read them), one built before reports recorded their participants.

    Returns:
        One entry per deleted report (id, when requested, reason) for the erasure record.
    """
    erased = set(participant_ids)
    if not erased:
        return []
    Reason = ErasureRecord.ReportReason
    doomed = []
    for report in StudyReport.objects.select_for_update().filter(study=study).order_by("pk"):
        if report.status == StudyReport.Status.QUEUED:
            continue
        if report.status != StudyReport.Status.DONE:
            doomed.append((report, Reason.NOT_BUILT))
        elif report.participant_ids is None:
            doomed.append((report, Reason.UNRECORDED))
        elif erased.intersection(report.participant_ids):
            doomed.append((report, Reason.HELD_DATA))
    return _delete_reports(doomed)


def _erase(
    study: Study, participants: QuerySet[Participant], *, scope: str, by: AbstractBaseUser | None
) -> ErasureRecord:
    ids = list(participants.values_list("pk", flat=True))
    counts = {
        "participants": len(ids),
        "trials": Trial.objects.filter(participant__in=participants).count(),
        "trial_items": TrialItem.objects.filter(trial__participant__in=participants).count(),
        "responses": Response.objects.filter(trial__participant__in=participants).count(),
        "background_answers": participants.exclude(background={}).count(),
    }
    participants.delete()
    deleted_reports = delete_reports_holding(study, ids)
    return ErasureRecord.objects.create(
        study=study,
        study_label=_study_label(study),
        scope=scope,
        performed_by=by if by is not None and by.is_authenticated else None,
        performed_by_name=by.get_username() if by is not None else PARTICIPANT_ACTOR,
        reports=len(deleted_reports),
        deleted_reports=deleted_reports,
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
    """``(storage, name)`` of every stored file of ``study`` (images, candidates, training outputs, method copies)."""
    files = []
    for model, fields in (
        (ContentImage, ("image", "thumbnail")),
        (StyleImage, ("image", "thumbnail")),
        (Candidate, ("image",)),
        (GanTrainingRun, ("checkpoint", "generator", "sample_grid")),
    ):
        for row in model.objects.filter(study=study).only("pk", *fields):
            files += [(f.storage, f.name) for f in (getattr(row, name) for name in fields) if f]
    # A trained generator used as a method is a stored copy named in the configuration's parameters.
    for params in MethodConfig.objects.filter(study=study, training_run__isnull=False).values_list("params", flat=True):
        files.append((default_storage, params["checkpoint"]))
    return files


def do_delete_study(study: Study, *, by: AbstractBaseUser) -> ErasureRecord:
    """Delete a study with everything in it; the audit record keeps its label and the counts.

    Files are removed from storage after the transaction commits (a rolled-back
    deletion keeps them).
    """
    with transaction.atomic():
        record = _erase(study, Participant.objects.filter(study=study), scope=ErasureRecord.Scope.STUDY_DELETED, by=by)
        rest = StudyReport.objects.select_for_update().filter(study=study).order_by("pk")
        deleted = record.deleted_reports + _delete_reports(
            [(report, ErasureRecord.ReportReason.STUDY_DELETED) for report in rest])
        ErasureRecord.objects.filter(pk=record.pk).update(reports=len(deleted), deleted_reports=deleted)
        files = _study_files(study)
        study.delete()
        transaction.on_commit(lambda: [storage.delete(name) for storage, name in files])
    record.refresh_from_db()
    return record
