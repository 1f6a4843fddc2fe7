"""The participant flow through the HTTP endpoints."""

from __future__ import annotations

import pytest
from django.test import Client

from studies.models import Participant, Response

from .factories import make_study
from .helpers import consent, entry_url, run_to_end, session_url, start, submit_background

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
