"""Database and cache outages: participants get a "please retry" 503 or keep going, never a 500."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import InterfaceError, OperationalError
from django.test import Client
from django.urls import reverse

from studies import ratelimit, views
from studies.middleware import RETRY_AFTER_SECONDS, is_service_outage
from studies.models import Participant, Response
from tests.participants.factories import make_study
from tests.participants.helpers import (
    answer_for,
    consent,
    session_url,
    start,
    submit_background,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    return make_study()


@pytest.fixture
def web():
    # The 500 case must come back as a response, as a browser would see it.
    return Client(raise_request_exception=False)


@pytest.fixture
def in_trials(study, web):
    participant = consent(web, study)
    assert submit_background(web, participant).status_code == 302
    assert start(web, participant).status_code == 302
    return participant


def _db_down(*_args, **_kwargs):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_database_outage_in_a_view_is_a_503_page_with_retry_after(web, in_trials, monkeypatch, error):
    def down(*_a, **_k):
        raise error("server closed the connection unexpectedly")

    monkeypatch.setattr(views, "access_participant_by_token", down)
    page = web.get(session_url(in_trials.token))
    assert page.status_code == 503
    assert page["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert page["Cache-Control"] == "no-store"
    text = page.content.decode()
    assert "Please try again in a moment" in text and "Server Error" not in text
    # A GET retries itself; the participant's token stays on their own page only.
    assert f'url={session_url(in_trials.token)}' in text


def test_answer_post_during_outage_stores_nothing_and_retry_leads_to_the_session_page(web, in_trials, monkeypatch):
    trial = in_trials.trials.order_by("position").first()
    web.get(session_url(in_trials.token))
    url = reverse("studies:participant_answer", args=[in_trials.token, trial.position])
    from studies.actions import participants as actions

    monkeypatch.setattr(actions, "insert_response", _db_down)  # the database fails at the insert
    page = web.post(url, answer_for(trial))
    assert page.status_code == 503 and page["Retry-After"]
    assert f'href="{session_url(in_trials.token)}"' in page.content.decode()
    assert not Response.objects.filter(trial=trial).exists()
    monkeypatch.undo()
    # Service back: the same answer is accepted once.
    assert web.post(url, answer_for(trial)).status_code == 200
    assert web.post(url, answer_for(trial)).status_code == 302
    assert Response.objects.filter(trial=trial).count() == 1


def test_json_clients_get_a_json_503(web, in_trials, monkeypatch):
    monkeypatch.setattr(views, "access_participant_by_token", _db_down)
    page = web.get(session_url(in_trials.token), headers={"Accept": "application/json"})
    assert page.status_code == 503 and page["Content-Type"] == "application/json"
    body = page.json()
    assert body["retry"] is True and body["retry_after"] == RETRY_AFTER_SECONDS and body["message"]


def test_outage_outside_a_view_is_also_a_503(web, study, monkeypatch, settings):
    """Saving the session happens in middleware after the view: handler500 must catch it."""
    session = web.session  # a browser with a session (a researcher's, say), saved on every request
    session["seen"] = True
    session.save()
    settings.SESSION_SAVE_EVERY_REQUEST = True
    monkeypatch.setattr(SessionStore, "save", lambda *a, **k: _db_down())
    page = web.post(reverse("studies:participant_entry", args=[study.slug]), {"decision": "accept"})
    assert page.status_code == 503 and page["Retry-After"] == str(RETRY_AFTER_SECONDS)


def test_other_errors_stay_500(web, in_trials, monkeypatch):
    def bug(*_a, **_k):
        raise KeyError("a real bug")

    monkeypatch.setattr(views, "access_participant_by_token", bug)
    page = web.get(session_url(in_trials.token))
    assert page.status_code == 500 and "Retry-After" not in page


def test_outage_is_recognised_through_wrapping():
    try:
        try:
            raise OperationalError("down")
        except OperationalError as exc:
            raise RuntimeError("while saving") from exc
    except RuntimeError as wrapped:
        assert is_service_outage(wrapped)
    assert not is_service_outage(ValueError("x")) and not is_service_outage(None)


class _BrokenCache:
    def __getattr__(self, name):
        def fail(*_a, **_k):
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return fail


def test_rate_limit_fails_open_when_the_cache_is_down(web, study, monkeypatch, settings):
    settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 1
    participant = consent(web, study)
    monkeypatch.setattr(ratelimit, "_cache", _BrokenCache)
    # Over the limit of 1, yet served: the limit cannot be counted without a cache.
    assert submit_background(web, participant).status_code == 302
    assert start(web, participant).status_code == 302
    assert web.get(session_url(participant.token)).status_code == 200
    participant.refresh_from_db()
    assert participant.status == Participant.Status.IN_PROGRESS
    monkeypatch.undo()
    # Cache back: the limit applies again.
    codes = [web.post(reverse("studies:participant_start", args=[participant.token])).status_code for _ in range(3)]
    assert 429 in codes
