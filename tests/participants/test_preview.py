"""Preview sessions: a study's researcher tries it as a participant; nothing of it reaches quotas, exports or analysis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from studies.assignment import group_fill
from studies.export import study_frame
from studies.models import Participant, Study
from studies.permissions import make_researcher

from .factories import make_study
from .helpers import consent, run_to_end, start, submit_background

pytestmark = pytest.mark.django_db


def _researcher(name: str):
    user = get_user_model().objects.create_user(name, password="pw")
    make_researcher(user)
    client = Client()
    client.force_login(user)
    return user, client


def _complete(client, study) -> Participant:
    participant = consent(client, study)
    submit_background(client, participant)
    start(client, participant)
    return run_to_end(client, participant)


def test_preview_sessions_never_reach_quotas_exports_or_analysis():
    study = make_study(quota=1)
    owner, owner_client = _researcher("owner")
    study.owners.add(owner)
    preview = _complete(owner_client, study)
    assert preview.is_preview and preview.completed_at is not None and preview.slot is None
    assert preview.trials.filter(response__isnull=False).exists()
    chinese = study.participant_groups.get(slug="chinese")
    assert group_fill([chinese]) == {chinese.pk: 0}, "a preview takes no quota place"

    real = _complete(Client(), study)
    assert not real.is_preview and real.status == Participant.Status.COMPLETED and real.group == chinese
    frame = study_frame(study.pk)
    assert set(frame["participant_id"]) == {real.pk}
    # The preview already went through the full group; a second preview still gets trials.
    again = Client()
    again.force_login(owner)
    second = _complete(again, study)
    assert second.is_preview and second.group == chinese and second.status != Participant.Status.SCREENED_OUT
    assert set(study_frame(study.pk)["participant_id"]) == {real.pk}


def test_only_the_studys_researchers_get_a_preview():
    study = make_study()
    _other, other_client = _researcher("other")
    participant = consent(other_client, study)
    assert participant.is_preview is False, "another researcher is an ordinary participant"
    Study.objects.filter(pk=study.pk).update(status=Study.Status.READY)
    assert other_client.get(f"/s/{study.slug}/").status_code == 410, "nor can they open a study not yet live"
    before = Participant.objects.count()
    other_client.post(f"/s/{study.slug}/", {"decision": "accept"})
    assert Participant.objects.count() == before


def test_closing_date_turns_new_participants_away():
    study = make_study(slug="closing")
    Study.objects.filter(pk=study.pk).update(closes_at=timezone.now() - timedelta(minutes=1))
    assert Client().get(f"/s/{study.slug}/").status_code == 410
