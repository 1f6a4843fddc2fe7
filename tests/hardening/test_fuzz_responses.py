"""Fuzzed answer submissions: a clear 4xx or a redirect, a valid stored answer at most once, never a 500."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studies.models import Participant, Response, Trial
from tests.participants.factories import make_study
from tests.participants.helpers import (
    answer_for,
    consent,
    session_url,
    start,
    submit_background,
)

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

_text = st.one_of(
    st.text(max_size=40),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", "1", "3", "5", "0", "-1", "6", "1e3", "nan", "inf", "0,1,2", "2,1,0", "0,0,1", "1,2,3",
                     "0,1", "٣", "\x00", "3 ", " 2", "1.0", "true", "null", "[1]", "{}"]),
)
_post = st.dictionaries(st.sampled_from(["value", "choice", "ranking", "client_rt_ms", "position", "token",
                                         "participant", "csrfmiddlewaretoken", "x" * 300]),
                        st.one_of(_text, st.lists(_text, max_size=3)), max_size=5)


class Session:
    """One participant in trials, replaced by a fresh one when finished."""

    def __init__(self, study):
        self.study, self.n = study, 0
        self.client = Client(raise_request_exception=False)
        self.renew()

    def renew(self) -> None:
        self.n += 1
        self.participant = consent(self.client, self.study, PROLIFIC_PID=f"FUZZ{self.n}")
        assert submit_background(self.client, self.participant).status_code == 302
        assert start(self.client, self.participant).status_code == 302

    def current(self) -> Trial:
        trial = self.participant.trials.filter(response__isnull=True).order_by("position").first()
        if trial is None:
            self.renew()
            return self.current()
        # Shown first, as a browser would.
        assert self.client.get(session_url(self.participant.token)).status_code == 200
        return trial


def _stored_is_valid(trial: Trial, response: Response) -> None:
    n = trial.items.count()
    points = trial.question.scale_points
    if trial.attention_kind == Trial.AttentionKind.SCRAMBLED or (not trial.attention_kind and trial.question.kind == "2afc"):
        assert response.choice is not None and response.choice.trial_id == trial.pk
        assert response.value is None and response.ranking is None
    elif trial.attention_kind == Trial.AttentionKind.INSTRUCTED or trial.question.kind == "likert":
        assert response.value is not None and 1 <= response.value <= max(points, 2)
        assert response.choice is None and response.ranking is None
    else:
        assert sorted(response.ranking) == list(range(n)) and response.value is None
    assert response.client_rt_ms is None or 0 <= response.client_rt_ms <= 2 * 3600 * 1000


@pytest.fixture
def session(settings):
    settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 0
    return Session(make_study(slug="fuzz", trials=4))


@FUZZ
@given(data=_post, as_json=st.booleans())
def test_random_answer_posts(session, data, as_json):
    trial = session.current()
    url = reverse("studies:participant_answer", args=[session.participant.token, trial.position])
    before = Response.objects.count()
    if as_json:
        reply = session.client.post(url, json.dumps(data), content_type="application/json")
    else:
        reply = session.client.post(url, data)
    assert reply.status_code in (200, 400), (reply.status_code, data)  # 200: stored, next page
    stored = Response.objects.filter(trial=trial).first()
    if reply.status_code == 400:
        assert stored is None and Response.objects.count() == before
    else:
        assert stored is not None and Response.objects.count() == before + 1
        _stored_is_valid(trial, stored)


@FUZZ
@given(position=st.integers(-5, 10**12), data=_post)
def test_wrong_trial_positions(session, position, data):
    trial = session.current()
    before = Response.objects.count()
    try:
        url = reverse("studies:participant_answer", args=[session.participant.token, position])
    except Exception:  # noqa: BLE001 - a negative position has no URL at all
        return
    reply = session.client.post(url, data or answer_for(trial))
    assert reply.status_code in (200, 302, 400, 404)
    if reply.status_code == 200:  # stored, and the next step's page: only the current trial's answer
        assert position == trial.position and Response.objects.count() == before + 1
    if position != trial.position:
        assert Response.objects.count() == before, "only the current trial can be answered"


@FUZZ
@given(token=st.text(max_size=80))
def test_unknown_or_malformed_tokens_are_404(session, token):
    trial = session.current()
    before = Response.objects.count()
    reply = session.client.post(f"/p/{token}/trial/{trial.position}", answer_for(trial))
    assert reply.status_code in (404, 301, 302) and reply.status_code != 500
    assert Response.objects.count() == before


def test_replayed_submission_is_stored_once(session):
    trial = session.current()
    url = reverse("studies:participant_answer", args=[session.participant.token, trial.position])
    data = answer_for(trial)
    replies = [session.client.post(url, data).status_code for _ in range(5)]
    assert replies == [200] + [302] * 4 and Response.objects.filter(trial=trial).count() == 1
    # The replay of an old answer after moving on changes nothing either.
    nxt = session.current()
    assert session.client.post(url, {**data, "value": "1"}).status_code == 302
    assert Response.objects.filter(trial=trial).count() == 1 and not Response.objects.filter(trial=nxt).exists()


def test_another_participants_token_reaches_only_their_own_trials(session):
    mine = session.participant
    trial = session.current()
    other_client = Client()
    other = consent(other_client, session.study, PROLIFIC_PID="OTHER")
    submit_background(other_client, other)
    # With my cookies and the other token: acts on the other participant (the token is the key) ...
    url = reverse("studies:participant_answer", args=[other.token, trial.position])
    session.client.post(url, answer_for(trial))
    assert not Response.objects.filter(trial__participant=mine).exists()
    # ... and their (not yet started) trials are unaffected by positions of mine.
    other.refresh_from_db()
    assert other.status == Participant.Status.IN_PROGRESS
    assert not Response.objects.filter(trial__participant=other, trial__position__gt=0).exists()


def test_malformed_bodies(session):
    trial = session.current()
    url = reverse("studies:participant_answer", args=[session.participant.token, trial.position])
    for body, ctype in [(b"{not json", "application/json"), (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
                        (b"value=" + b"9" * 5000, "application/x-www-form-urlencoded"),
                        (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
                        (b"value=3&value=4&value=", "application/x-www-form-urlencoded")]:
        reply = session.client.generic("POST", url, body, content_type=ctype)
        assert reply.status_code in (302, 400), (body[:20], reply.status_code)
    assert Response.objects.filter(trial=trial).count() <= 1
