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
from .helpers import (
    answer,
    consent,
    entry_url,
    run_to_end,
    session_url,
    start,
    submit_background,
)

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


BANNER = 'class="preview-banner"'


def _pages_of_a_session(client, study) -> list:
    """Every page a participant meets: consent, background, instructions, a trial (shown and answered), the end."""
    pages = [client.get(entry_url(study))]
    participant = consent(client, study)
    pages.append(client.get(session_url(participant.token)))
    submit_background(client, participant)
    pages.append(client.get(session_url(participant.token)))
    start(client, participant)
    pages.append(client.get(session_url(participant.token)))
    pages.append(answer(client, participant, participant.trials.order_by("position").first()))
    run_to_end(client, participant)
    pages.append(client.get(session_url(participant.token)))
    steps = ("consent", "background", "instructions", "trial", "trial", "done")
    for page, step in zip(pages, steps, strict=True):
        assert f"studies/participant/{step}.html" in {t.name for t in page.templates}, step
    return pages


def test_every_page_of_a_preview_says_so():
    """An owner who opens the plain participant link gets a preview: each page carries the banner, translated."""
    study = make_study()
    owner, owner_client = _researcher("owner")
    study.owners.add(owner)
    for page in _pages_of_a_session(owner_client, study):
        assert page.content.decode().count(BANNER) == 1
    fresh = Client()
    fresh.force_login(owner)
    chinese = fresh.get(entry_url(study, lang="zh-hans")).content.decode()
    assert BANNER in chinese and "不计入" in chinese
    for page in _pages_of_a_session(Client(), study):
        assert BANNER not in page.content.decode(), "an ordinary participant sees no banner"


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
