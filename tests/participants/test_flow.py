"""The participant flow through the HTTP endpoints."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from studies.export import study_frame
from studies.models import Participant, Question, Response, Study

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


def test_full_flow_reaches_completion_code():
    """Consent, background, instructions, practice, all trials, then a completion code and redirect."""
    study = make_study()
    client = Client()
    page = client.get(entry_url(study))
    assert page.status_code == 200
    assert b"Consent text EN." in page.content
    participant = consent(client, study)
    assert participant.status == Participant.Status.CONSENTED
    assert b"About you" in client.get(session_url(participant.token)).content
    assert submit_background(client, participant).status_code == 302
    participant.refresh_from_db()
    assert participant.group.slug == "chinese"
    assert participant.status == Participant.Status.IN_PROGRESS
    assert b"Instructions EN." in client.get(session_url(participant.token)).content
    start(client, participant)
    kinds = set(participant.trials.values_list("question__kind", flat=True))
    assert kinds == {"likert", "2afc", "ranking"}
    assert participant.trials.filter(is_practice=True).count() == 1
    assert participant.trials.exclude(attention_kind="").count() == 2
    participant = run_to_end(client, participant)
    assert participant.status == Participant.Status.COMPLETED
    assert participant.completion_code
    done = client.get(session_url(participant.token))
    assert participant.completion_code.encode() in done.content
    assert f"https://recruiter.example/complete?cc={participant.completion_code}".encode() in done.content
    assert Response.objects.filter(trial__participant=participant).count() == participant.trials.count()
    assert all(r.server_rt_ms is not None for r in Response.objects.filter(trial__participant=participant))


def test_only_likert_rows_carry_a_scale_size_in_the_export():
    """A 2AFC question stores no scale size (its trials still run); one stored with the old default exports none."""
    study = make_study()
    Question.objects.filter(study=study, kind="2afc").update(scale_points=None)
    assert set(Question.objects.filter(study=study, kind="ranking").values_list("scale_points", flat=True)) == {5}
    client = Client()
    participant = consent(client, study)
    submit_background(client, participant)
    start(client, participant)
    assert run_to_end(client, participant).status == Participant.Status.COMPLETED
    frame = study_frame(study.pk)
    sizes = frame.groupby("question_kind")["scale_points"].agg(lambda s: set(s.dropna()))
    assert sizes.to_dict() == {"likert": {5}, "2afc": set(), "ranking": set()}


def test_declining_stores_nothing():
    """Declining consent ends the study without creating a session or storing answers."""
    study = make_study()
    client = Client()
    response = client.post(entry_url(study), {"decision": "decline", "PROLIFIC_PID": "abc"})
    assert response.status_code == 200
    assert b"No answers have been stored" in response.content
    assert b"https://recruiter.example/screenout" in response.content
    assert Participant.objects.count() == 0


def test_screen_out_page_redirects_to_recruiter():
    """An ineligible participant sees a polite screen-out page with the recruiter's screen-out link."""
    study = make_study()
    client = Client()
    p = consent(client, study)
    submit_background(client, p, cultural_background="other")
    page = client.get(session_url(p.token))
    assert b"different background" in page.content
    assert b'href="https://recruiter.example/screenout"' in page.content
    p.refresh_from_db()
    assert p.status == Participant.Status.SCREENED_OUT and p.trials.count() == 0


def test_background_validation_errors_are_shown():
    """A missing required answer re-shows the form with an error and assigns nothing."""
    study = make_study()
    client = Client()
    p = consent(client, study)
    response = submit_background(client, p, cultural_background="")
    assert response.status_code == 400
    assert b'role="alert"' in response.content
    p.refresh_from_db()
    assert p.group is None


def test_same_recruiter_id_returns_to_the_same_session():
    """Opening the study link again with the same PROLIFIC_PID resumes the session at the next trial."""
    study = make_study()
    client = Client()
    p = consent(client, study, PROLIFIC_PID="pid-1", STUDY_ID="s", SESSION_ID="x")
    submit_background(client, p)
    start(client, p)
    run_to_end(client, p, stop_after=3)
    # A different browser (no cookie) with the same link.
    other = Client()
    response = other.get(entry_url(study, PROLIFIC_PID="pid-1", STUDY_ID="s", SESSION_ID="x"))
    assert response.status_code == 302 and response["Location"] == session_url(p.token)
    nxt = p.trials.filter(response__isnull=True).order_by("position").first()
    assert nxt.position == 3
    page = other.get(session_url(p.token)).content.decode()
    assert f"/trial/{nxt.position}" in page
    # Another recruiter id gets a new session.
    assert Client().get(entry_url(study, PROLIFIC_PID="pid-2")).status_code == 200
    assert Participant.objects.count() == 1


def test_reload_shows_the_next_unanswered_trial():
    """Reloading a trial page shows the same trial, keeping its first-shown time."""
    study = make_study()
    client = Client()
    p = consent(client, study)
    submit_background(client, p)
    start(client, p)
    client.get(session_url(p.token))
    trial = p.trials.get(position=0)
    trial.refresh_from_db()
    shown = trial.shown_at
    assert shown is not None
    page = client.get(session_url(p.token)).content.decode()
    assert "/trial/0" in page
    trial.refresh_from_db()
    assert trial.shown_at == shown
    # The study link in the same browser also resumes.
    assert client.get(entry_url(study))["Location"] == session_url(p.token)


def test_the_study_link_resumes_from_a_signed_cookie_not_the_session_store():
    """The browser's session list is a signed cookie: a consent stores no session row, a forged cookie
    resumes nothing, withdrawing forgets the session, and a list kept in the session store still resumes."""
    from django.contrib.sessions.models import Session
    from django.core.signing import get_cookie_signer

    study = make_study()
    client = Client()
    p = consent(client, study)
    assert not Session.objects.exists()
    cookie = client.cookies["stylestudy_sessions"]
    assert p.token in cookie.value and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert client.get(entry_url(study))["Location"] == session_url(p.token)

    other = consent(Client(), study)
    forged = Client()
    forged.cookies["stylestudy_sessions"] = cookie.value.replace(p.token, other.token)
    assert forged.get(entry_url(study)).status_code == 200  # the consent page: nothing resumed
    unsigned = get_cookie_signer(salt="stylestudy_sessions" + "wrong-salt").sign(f'{{"{study.slug}":"{other.token}"}}')
    forged.cookies["stylestudy_sessions"] = unsigned
    assert forged.get(entry_url(study)).status_code == 200

    legacy = Client()
    session = legacy.session
    session["stylestudy_sessions"] = {study.slug: other.token}
    session.save()
    assert legacy.get(entry_url(study))["Location"] == session_url(other.token)

    assert client.post(reverse("studies:participant_withdraw", args=[p.token]), {"confirm": "withdraw"}).status_code == 200
    assert p.token not in client.cookies["stylestudy_sessions"].value
    assert client.get(entry_url(study)).status_code == 200


def test_failed_attention_checks_exclude_and_free_the_slot():
    """Past the allowed failures a participant is flagged excluded, may finish, and their slot is reused."""
    study = make_study(attention_allowed=1)
    client = Client()
    p = consent(client, study)
    submit_background(client, p)
    start(client, p)
    p = run_to_end(client, p, fail_attention=True)
    assert p.attention_failures == 2
    assert p.status == Participant.Status.EXCLUDED
    assert p.completion_code and p.completed_at
    failed = Response.objects.filter(trial__participant=p, passed_attention=False).count()
    assert failed == 2
    newcomer = consent(Client(), study)
    submit_background(Client(), newcomer)
    newcomer.refresh_from_db()
    assert newcomer.slot == p.slot


def test_passed_attention_checks_are_recorded():
    """Correct answers to known-answer items are marked passed; the participant completes."""
    study = make_study()
    client = Client()
    p = consent(client, study)
    submit_background(client, p)
    start(client, p)
    p = run_to_end(client, p)
    assert p.status == Participant.Status.COMPLETED
    assert set(Response.objects.filter(trial__participant=p).exclude(passed_attention=None)
               .values_list("passed_attention", flat=True)) == {True}


def test_study_not_live_is_closed_to_participants():
    """A draft study's link, or a live study without stimuli, shows a 'not open' page and creates nothing."""
    study = make_study(status="draft")
    client = Client()
    assert client.get(entry_url(study)).status_code == 404
    assert client.post(entry_url(study), {"decision": "accept"}).status_code == 404
    empty = make_study(slug="empty", contents=0)
    response = client.post(entry_url(empty), {"decision": "accept"})
    assert response.status_code == 410 and b"not open" in response.content
    assert Participant.objects.count() == 0


def test_invalid_answer_is_rejected_with_a_message():
    """An incomplete ranking or a missing rating re-shows the trial with an error, storing nothing."""
    study = make_study()
    client = Client()
    p = consent(client, study)
    submit_background(client, p)
    start(client, p)
    client.get(session_url(p.token))
    response = client.post(reverse("studies:participant_answer", args=[p.token, 0]), {"value": 99, "ranking": "0,0"})
    assert response.status_code == 400
    assert b'role="alert"' in response.content
    assert not Response.objects.filter(trial__participant=p).exists()


def test_images_are_served_without_revealing_methods():
    """Trial images come from token-scoped URLs; an attention foil is a scrambled PNG."""
    from studies.models import Trial

    study = make_study()
    client = Client()
    p = consent(client, study)
    submit_background(client, p)
    start(client, p)
    page = client.get(session_url(p.token)).content.decode()
    assert "/media/" not in page and "candidates" not in page
    check = p.trials.filter(attention_kind=Trial.AttentionKind.SCRAMBLED).first()
    # The content photos are 32 px; at an image size of 16 both the intact photo and its
    # scrambled foil are 16 px, like the candidates, so the check does not stand out.
    Study.objects.filter(pk=study.pk).update(image_size=16)
    sizes = []
    for slot in (0, 1):
        image = client.get(reverse("studies:participant_image", args=[p.token, check.position, str(slot)]))
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        data = b"".join(image.streaming_content if image.streaming else [image.content])
        assert data[:4] == b"\x89PNG"
        sizes.append(PILImage.open(io.BytesIO(data)).size)
    assert sizes == [(16, 16), (16, 16)]
