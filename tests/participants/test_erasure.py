"""Withdrawal, researchers' erasure actions and the audit log; researchers' preview sessions."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from studies.actions import erasure
from studies.assignment import group_fill
from studies.export import study_frame
from studies.models import (
    ErasureRecord,
    Participant,
    ParticipantGroup,
    Response,
    Study,
    StudyReport,
    Trial,
    TrialItem,
)
from studies.permissions import make_researcher
from studies.reports import ReportOptions
from studies.workers.report import run_report_job

from .factories import make_study
from .helpers import (
    consent,
    entry_url,
    run_to_end,
    session_url,
    start,
    submit_background,
)

pytestmark = pytest.mark.django_db

PID = "5f0c0ffee0000000000000aa"


def _finished(study, client=None, **params) -> Participant:
    client = client or Client()
    participant = consent(client, study, **params)
    submit_background(client, participant)
    start(client, participant)
    return run_to_end(client, participant)


def _rows_of(pk: int) -> tuple[int, int, int, int]:
    return (
        Participant.objects.filter(pk=pk).count(),
        Trial.objects.filter(participant_id=pk).count(),
        TrialItem.objects.filter(trial__participant_id=pk).count(),
        Response.objects.filter(trial__participant_id=pk).count(),
    )


def _researcher(name: str):
    return make_researcher(get_user_model().objects.create_user(name, password=f"pw-{name}"))


@pytest.fixture
def study(settings):
    settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 0
    return make_study(slug="erasure")


class TestWithdrawal:
    def test_every_participant_page_links_to_withdrawal(self, study):
        client = Client()
        participant = consent(client, study)
        link = reverse("studies:participant_withdraw", args=[participant.token])
        pages = [client.get(session_url(participant.token))]  # background questionnaire
        submit_background(client, participant)
        pages.append(client.get(session_url(participant.token)))  # instructions
        start(client, participant)
        pages.append(client.get(session_url(participant.token)))  # a trial
        run_to_end(client, participant)
        pages.append(client.get(session_url(participant.token)))  # completion page
        assert b"completion-code" in pages[-1].content
        for page in pages:
            assert page.status_code == 200
            assert link.encode() in page.content, page.templates[0].name

    def test_withdrawn_participant_leaves_no_row_and_no_export_row(self, study):
        client = Client()
        leaving = _finished(study, client, PROLIFIC_PID=PID)
        staying = _finished(study)
        assert all(_rows_of(leaving.pk)) and leaving.background
        responses = Response.objects.filter(trial__participant=leaving).count()
        trials = Trial.objects.filter(participant=leaving).count()
        items = TrialItem.objects.filter(trial__participant=leaving).count()
        before = study_frame(study.pk)
        assert set(before["participant_id"]) == {leaving.pk, staying.pk}

        url = reverse("studies:participant_withdraw", args=[leaving.token])
        confirm = client.get(url)
        assert confirm.status_code == 200 and b"confirm-withdraw" in confirm.content
        assert _rows_of(leaving.pk) == (1, trials, items, responses), "the confirmation page changes nothing"
        done = client.post(url, {"confirm": "withdraw"})
        assert done.status_code == 200 and b"withdrawn-message" in done.content

        assert _rows_of(leaving.pk) == (0, 0, 0, 0)
        assert not Participant.objects.filter(external_id_hash=leaving.external_id_hash).exists()
        after = study_frame(study.pk)
        assert set(after["participant_id"]) == {staying.pk}
        assert leaving.external_id_hash not in after.to_csv(index=False)
        assert len(after) == len(before[before["participant_id"] == staying.pk])

        record = ErasureRecord.objects.get()
        assert record.scope == ErasureRecord.Scope.WITHDRAWAL and record.study == study
        assert (record.participants, record.trials, record.trial_items, record.responses,
                record.background_answers) == (1, trials, items, responses, 1)
        assert record.performed_by is None and record.performed_by_name == "participant"
        # The audit entry holds counts, never the data or anything that identifies the participant.
        stored = " ".join(str(v) for v in ErasureRecord.objects.values().get().values())
        assert leaving.token not in stored and leaving.external_id_hash not in stored
        # The session is gone: its link answers 404, and the study link starts afresh.
        assert client.get(session_url(leaving.token)).status_code == 404
        assert client.get(entry_url(study)).status_code == 200

    def test_withdrawal_frees_the_group_place(self, study):
        ParticipantGroup.objects.filter(study=study).update(quota=1)
        client = Client()
        first = consent(client, study)
        submit_background(client, first)
        group = ParticipantGroup.objects.get(study=study, slug="chinese")
        assert group_fill([group])[group.pk] == 1
        client.post(reverse("studies:participant_withdraw", args=[first.token]), {"confirm": "withdraw"})
        assert group_fill([group])[group.pk] == 0
        second_client = Client()
        second = consent(second_client, study)
        submit_background(second_client, second)
        second.refresh_from_db()
        assert second.status == Participant.Status.IN_PROGRESS and second.group == group

    def test_post_without_confirmation_erases_nothing(self, study):
        client = Client()
        participant = _finished(study, client)
        url = reverse("studies:participant_withdraw", args=[participant.token])
        assert client.post(url, {}).status_code == 302
        assert all(_rows_of(participant.pk)) and not ErasureRecord.objects.exists()

    @pytest.mark.parametrize(
        ("lang", "finished_text", "mid_session_text"),
        [("en", "You had already finished the study", "please return the study there"),
         ("zh-hans", "您此前已完成本研究", "请在该网站上退回本研究"),
         ("ja", "この研究はすでに完了しているため", "そちらで研究を返却してください")],
        ids=["en", "zh-hans", "ja"],
    )
    def test_withdrawn_page_says_what_is_left_to_do(self, study, lang, finished_text, mid_session_text):
        """Only someone who withdraws mid-session is asked to return the study on the recruitment site;
        someone who had finished (and has their completion code) is told nothing more is needed."""
        pages = {}
        for finished in (True, False):
            client = Client()
            participant = consent(client, study, lang=lang)
            submit_background(client, participant)
            start(client, participant)
            if finished:
                participant = run_to_end(client, participant)
                assert participant.is_finished
            reply = client.post(reverse("studies:participant_withdraw", args=[participant.token]),
                                {"confirm": "withdraw"})
            assert reply.status_code == 200 and b"withdrawn-message" in reply.content
            pages[finished] = reply.content.decode()
        assert finished_text in pages[True] and mid_session_text not in pages[True]
        assert mid_session_text in pages[False] and finished_text not in pages[False]

    def test_the_studys_withdrawal_text_is_shown(self, study):
        study.texts["en"]["withdrawal"] = "Withdrawal deletes your answers, as the consent form says."
        study.save(update_fields=["texts"])
        client = Client()
        participant = consent(client, study)
        page = client.get(reverse("studies:participant_withdraw", args=[participant.token]))
        assert b"as the consent form says" in page.content


def _admin_post(client, model: str, action: str, pks, **extra):
    return client.post(reverse(f"admin:studies_{model}_changelist"),
                       {"action": action, "_selected_action": [str(pk) for pk in pks], **extra})


class TestResearcherErasure:
    @pytest.fixture
    def labs(self, study):
        alice, bob = _researcher("alice"), _researcher("bob")
        study.owners.add(alice)
        bobs = make_study(slug="bobs")
        bobs.owners.add(bob)
        return alice, bob, bobs

    def test_erase_selected_participants_after_confirmation(self, study, labs):
        alice, _bob, _bobs = labs
        gone, kept = _finished(study), _finished(study)
        client = Client()
        client.force_login(alice)
        page = _admin_post(client, "participant", "erase_selected", [gone.pk])
        assert page.status_code == 200 and b"erase-form" in page.content
        assert all(_rows_of(gone.pk)), "the confirmation page changes nothing"
        done = _admin_post(client, "participant", "erase_selected", [gone.pk], confirmed="yes")
        assert done.status_code == 302
        assert _rows_of(gone.pk) == (0, 0, 0, 0) and all(_rows_of(kept.pk))
        record = ErasureRecord.objects.get()
        assert record.scope == ErasureRecord.Scope.PARTICIPANT
        assert record.performed_by == alice and record.performed_by_name == "alice" and record.participants == 1

    def test_another_researcher_cannot_erase_through_a_forged_action(self, study, labs):
        _alice, bob, _bobs = labs
        victim = _finished(study)
        client = Client()
        client.force_login(bob)
        _admin_post(client, "participant", "erase_selected", [victim.pk], confirmed="yes")
        _admin_post(client, "study", "erase_participant_data", [study.pk], confirmed="yes")
        _admin_post(client, "study", "erase_by_recruiter_id", [study.pk], confirmed="yes", recruiter_id=PID)
        assert all(_rows_of(victim.pk)) and not ErasureRecord.objects.exists()

    def test_erase_by_recruiter_id(self, study, labs):
        alice, _bob, _bobs = labs
        target, other = _finished(study, PROLIFIC_PID=PID), _finished(study, PROLIFIC_PID=PID + "b")
        client = Client()
        client.force_login(alice)
        form = _admin_post(client, "study", "erase_by_recruiter_id", [study.pk])
        assert form.status_code == 200 and b"recruiter_id" in form.content
        _admin_post(client, "study", "erase_by_recruiter_id", [study.pk], confirmed="yes", recruiter_id="nobody")
        assert not ErasureRecord.objects.exists()
        _admin_post(client, "study", "erase_by_recruiter_id", [study.pk], confirmed="yes", recruiter_id=f" {PID} ")
        assert _rows_of(target.pk) == (0, 0, 0, 0) and all(_rows_of(other.pk))
        record = ErasureRecord.objects.get()
        assert record.scope == ErasureRecord.Scope.RECRUITER_ID and record.participants == 1
        assert PID not in " ".join(str(v) for v in ErasureRecord.objects.values().get().values())

    def test_erase_all_participant_data_of_a_study(self, study, labs, django_capture_on_commit_callbacks):
        alice, _bob, bobs = labs
        _finished(study), _finished(study)
        bobs_participant = _finished(bobs)
        report = StudyReport.objects.create(study=study, requested_by="alice", status="done", progress=1.0)
        report.html.save("report.html", ContentFile(b"<html>copies of the responses</html>"), save=True)
        report_file = report.html.path
        n_responses = Response.objects.filter(trial__participant__study=study).count()
        client = Client()
        client.force_login(alice)
        with django_capture_on_commit_callbacks(execute=True):
            _admin_post(client, "study", "erase_participant_data", [study.pk], confirmed="yes")
        assert not Participant.objects.filter(study=study).exists()
        assert not Response.objects.filter(trial__participant__study=study).exists()
        assert all(_rows_of(bobs_participant.pk)), "another study's data is untouched"
        assert study_frame(study.pk).empty
        assert not StudyReport.objects.filter(study=study).exists()
        assert not os.path.exists(report_file), "the stored report (a copy of the data) is deleted"
        record = ErasureRecord.objects.get()
        assert (record.scope, record.participants, record.responses, record.reports) == (
            ErasureRecord.Scope.STUDY, 2, n_responses, 1)
        # The study itself and its stimuli stay.
        assert Study.objects.filter(pk=study.pk).exists() and study.candidates.exists()

    def test_audit_log_is_read_only_and_scoped(self, study, labs):
        alice, bob, _bobs = labs
        participant = _finished(study)
        client = Client()
        client.force_login(alice)
        _admin_post(client, "participant", "erase_selected", [participant.pk], confirmed="yes")
        record = ErasureRecord.objects.get()
        page = client.get(reverse("admin:studies_erasurerecord_changelist"))
        assert page.status_code == 200 and list(page.context["cl"].queryset) == [record]
        assert client.post(reverse("admin:studies_erasurerecord_delete", args=[record.pk]),
                           {"post": "yes"}).status_code == 403
        assert ErasureRecord.objects.filter(pk=record.pk).exists()
        other = Client()
        other.force_login(bob)
        assert list(other.get(reverse("admin:studies_erasurerecord_changelist")).context["cl"].queryset) == []


def _built_report(study) -> StudyReport:
    """A report built by the worker, as the admin action builds it, from the data stored now."""
    report = StudyReport.objects.create(study=study, requested_by="alice")
    assert run_report_job(report.pk, options=ReportOptions(n_resamples=20)) == StudyReport.Status.DONE
    report.refresh_from_db()
    assert report.html and report.archive
    return report


def _mid_session(study, client=None, **params) -> Participant:
    """A participant who started and answered two trials."""
    client = client or Client()
    participant = consent(client, study, **params)
    submit_background(client, participant)
    start(client, participant)
    run_to_end(client, participant, stop_after=2)
    assert Response.objects.filter(trial__participant=participant).count() == 2
    return participant


def _withdraw(participant: Participant) -> ErasureRecord:
    Client().post(reverse("studies:participant_withdraw", args=[participant.token]), {"confirm": "withdraw"})
    return ErasureRecord.objects.get(scope=ErasureRecord.Scope.WITHDRAWAL)


class TestReportsOnErasure:
    """An erasure deletes the stored reports that hold (or may hold) the erased data, and only those."""

    def test_a_report_built_before_the_participant_started_survives_their_withdrawal(
            self, study, django_capture_on_commit_callbacks):
        earlier = _finished(study)
        report = _built_report(study)
        assert report.participant_ids == [earlier.pk]
        leaving = _mid_session(study)
        with django_capture_on_commit_callbacks(execute=True):
            record = _withdraw(leaving)
        assert not Participant.objects.filter(pk=leaving.pk).exists()
        assert StudyReport.objects.filter(pk=report.pk).exists(), "the report cannot hold the leaver's data"
        assert os.path.exists(report.html.path) and os.path.exists(report.archive.path)
        assert (record.responses, record.reports, record.deleted_reports) == (2, 0, [])

    def test_a_report_built_after_the_first_response_goes_with_the_withdrawal(
            self, study, django_capture_on_commit_callbacks):
        _finished(study)
        before = _built_report(study)
        leaving = _mid_session(study)
        after = _built_report(study)
        assert leaving.pk in after.participant_ids and leaving.pk not in before.participant_ids
        queued = StudyReport.objects.create(study=study)  # not built yet: it will read the data without them
        files = [after.html.path, after.archive.path]
        with django_capture_on_commit_callbacks(execute=True):
            record = _withdraw(leaving)
        assert set(StudyReport.objects.filter(study=study).values_list("pk", flat=True)) == {before.pk, queued.pk}
        assert not any(os.path.exists(f) for f in files), "the report holding the leaver's answers is erased"
        assert record.reports == 1
        assert record.deleted_reports == [{"id": after.pk, "requested": after.created_at.isoformat(),
                                           "reason": ErasureRecord.ReportReason.HELD_DATA}]
        assert f"report {after.pk} (" in record.deleted_reports_text()

    def test_researcher_erasure_follows_the_same_rule(self, study):
        alice = _researcher("alice")
        study.owners.add(alice)
        first = _finished(study)
        only_first = _built_report(study)
        second = _finished(study, PROLIFIC_PID=PID)
        both = _built_report(study)
        unrecorded = StudyReport.objects.create(study=study, status="done")  # built before reports recorded it
        failed = StudyReport.objects.create(study=study, status="failed", error="ValueError: no data")
        client = Client()
        client.force_login(alice)

        done = _admin_post(client, "study", "erase_by_recruiter_id", [study.pk], confirmed="yes", recruiter_id=PID)
        record = ErasureRecord.objects.get()
        assert record.participants == 1 and not Participant.objects.filter(pk=second.pk).exists()
        Reason = ErasureRecord.ReportReason
        assert [(e["id"], e["reason"]) for e in record.deleted_reports] == [
            (both.pk, Reason.HELD_DATA), (unrecorded.pk, Reason.UNRECORDED), (failed.pk, Reason.NOT_BUILT)]
        assert record.reports == 3
        assert list(StudyReport.objects.filter(study=study).values_list("pk", flat=True)) == [only_first.pk]
        shown = [str(m) for m in done.wsgi_request._messages]
        assert any(f"report {both.pk} (" in m and "built from the erased participants' responses" in m
                   for m in shown), shown

        _admin_post(client, "participant", "erase_selected", [first.pk], confirmed="yes")
        record = ErasureRecord.objects.get(scope=ErasureRecord.Scope.PARTICIPANT)
        assert (record.participants, record.reports) == (1, 1)
        assert [e["id"] for e in record.deleted_reports] == [only_first.pk]
        assert not StudyReport.objects.filter(study=study).exists()

    def test_erasing_all_participant_data_keeps_only_a_queued_report(self, study):
        alice = _researcher("alice")
        study.owners.add(alice)
        _finished(study)
        built = _built_report(study)
        queued = StudyReport.objects.create(study=study)
        record = erasure.do_erase_study_participants(study, by=alice)
        assert (record.participants, record.reports) == (1, 1)
        assert [e["id"] for e in record.deleted_reports] == [built.pk]
        assert list(StudyReport.objects.filter(study=study).values_list("pk", flat=True)) == [queued.pk]

    def test_the_report_list_names_the_reports_an_erasure_deleted(self, study):
        alice, bob = _researcher("alice"), _researcher("bob")
        study.owners.add(alice)
        leaving = _mid_session(study)
        report = _built_report(study)
        _withdraw(leaving)
        client = Client()
        client.force_login(alice)
        page = client.get(reverse("admin:studies_studyreport_changelist"))
        shown = [str(m) for m in page.context["messages"]]
        assert any(f"report {report.pk} (" in m and "built from the erased participants' responses" in m
                   and "Participant withdrew" in m for m in shown), shown
        log = client.get(reverse("admin:studies_erasurerecord_changelist"))
        assert f"report {report.pk} (".encode() in log.content
        other = Client()
        other.force_login(bob)
        assert not list(other.get(reverse("admin:studies_studyreport_changelist")).context["messages"])

    def test_deleting_the_study_names_every_report(self, study):
        root = get_user_model().objects.create_superuser("root", password="pw-root")
        _finished(study)
        held = _built_report(study)
        spare = StudyReport.objects.create(study=study)
        record = erasure.do_delete_study(study, by=root)
        Reason = ErasureRecord.ReportReason
        assert record.reports == 2
        assert [(e["id"], e["reason"]) for e in record.deleted_reports] == [
            (held.pk, Reason.HELD_DATA), (spare.pk, Reason.STUDY_DELETED)]


class TestStudyDeletion:
    def test_superuser_deletes_a_study_with_participants(self, study, django_capture_on_commit_callbacks):
        root = get_user_model().objects.create_superuser("root", password="pw-root")
        participant = _finished(study)
        image = study.candidates.first().image.path
        client = Client()
        client.force_login(root)
        url = reverse("admin:studies_study_delete", args=[study.pk])
        confirm = client.get(url)
        assert confirm.status_code == 200 and not confirm.context["protected"]
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(url, {"post": "yes"}).status_code == 302
        assert not Study.objects.filter(pk=study.pk).exists()
        assert _rows_of(participant.pk) == (0, 0, 0, 0)
        assert not os.path.exists(image), "stored files go with the study"
        record = ErasureRecord.objects.get()
        assert record.scope == ErasureRecord.Scope.STUDY_DELETED and record.study is None
        assert record.study_label == "Test study (erasure)" and record.participants == 1

    def test_researcher_cannot_delete_a_study_with_participant_data(self, study):
        alice = _researcher("alice")
        study.owners.add(alice)
        _finished(study)
        client = Client()
        client.force_login(alice)
        assert client.post(reverse("admin:studies_study_delete", args=[study.pk]), {"post": "yes"}).status_code == 403
        assert Study.objects.filter(pk=study.pk).exists()


class TestPreview:
    @pytest.fixture
    def draft(self, settings):
        settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 0
        return make_study(slug="draft", status=Study.Status.READY)

    def test_only_owners_and_superusers_may_preview(self, draft):
        owner, stranger = _researcher("owner"), _researcher("stranger")
        draft.owners.add(owner)
        client = Client()
        client.force_login(stranger)
        page = client.get(entry_url(draft))
        assert page.status_code == 410 and b"Consent text EN." not in page.content
        assert client.post(entry_url(draft), {"decision": "accept"}).status_code == 410
        assert not Participant.objects.filter(study=draft).exists()
        for user in (owner, get_user_model().objects.create_superuser("root", password="pw-root")):
            client = Client()
            client.force_login(user)
            participant = consent(client, draft)
            assert participant.is_preview

    def test_preview_sessions_are_in_no_export_quota_or_slot(self, draft):
        owner = _researcher("owner")
        draft.owners.add(owner)
        ParticipantGroup.objects.filter(study=draft).update(quota=1)
        client = Client()
        client.force_login(owner)
        preview = consent(client, draft)
        submit_background(client, preview)
        start(client, preview)
        run_to_end(client, preview)
        preview.refresh_from_db()
        assert preview.is_preview and preview.completed_at is not None and preview.slot is None
        Study.objects.filter(pk=draft.pk).update(status=Study.Status.LIVE)
        assert study_frame(draft.pk).empty, "a preview is never exported or analysed"
        group = preview.group
        assert group_fill([group])[group.pk] == 0
        real = _finished(draft)
        assert real.status == Participant.Status.COMPLETED and real.group == group and real.slot == 0
        assert set(study_frame(draft.pk)["participant_id"]) == {real.pk}
        listed = client.get(reverse("admin:studies_participantgroup_changelist")).context["cl"].queryset
        assert listed.get(pk=group.pk)._n == 1, "the group list counts the real participant only"
        # A full group still shows a preview its trials.
        again = Client()
        again.force_login(owner)
        second = consent(again, draft)
        submit_background(again, second)
        second.refresh_from_db()
        assert second.status == Participant.Status.IN_PROGRESS and second.is_preview
