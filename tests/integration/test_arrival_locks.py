"""Arrivals on PostgreSQL: a background submission locks only the groups it may join, and briefly.

Row locks are what PostgreSQL has and SQLite does not (it locks the whole
file), so these run on the services pass only.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from studies.actions.participants import RecruiterInfo, do_consent, do_submit_background
from studies.models import Participant, ParticipantGroup
from tests.participants.factories import BACKGROUND_POST, make_study

from .threads import start_in_thread

pytestmark = pytest.mark.django_db(transaction=True)


def _in_thread(fn, timeout: float):
    thread, outcome = start_in_thread(fn, lock_timeout="3s")
    thread.join(timeout)
    assert not thread.is_alive(), "the arrival is still waiting"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_arrival_does_not_wait_for_another_groups_lock(expect_services):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    study = make_study(quota=50)
    western = ParticipantGroup.objects.get(study=study, slug="western")
    participant = do_consent(study, RecruiterInfo(), language="en")
    with transaction.atomic():
        # Another arrival is being placed in the western group right now.
        list(ParticipantGroup.objects.select_for_update().filter(pk=western.pk))
        placed = _in_thread(lambda: do_submit_background(participant, dict(BACKGROUND_POST, cultural_background="japanese")),
                            timeout=10)
    assert placed.status == Participant.Status.IN_PROGRESS and placed.group.slug == "japanese"


def test_arrival_does_not_lock_the_study_row(expect_services):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    study = make_study(quota=50)
    participant = do_consent(study, RecruiterInfo(), language="en")
    with transaction.atomic():
        # A researcher's edit holds the study row; participants keep arriving.
        list(type(study).objects.select_for_update().filter(pk=study.pk))
        placed = _in_thread(lambda: do_submit_background(participant, BACKGROUND_POST), timeout=10)
    assert placed.status == Participant.Status.IN_PROGRESS


def test_concurrent_arrivals_fill_the_quota_exactly(expect_services):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    study = make_study(quota=5)
    arrivals = [do_consent(study, RecruiterInfo(), language="en") for _ in range(12)]
    results: list = []

    def arrive(p):
        try:
            results.append(do_submit_background(p, BACKGROUND_POST).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=arrive, args=(p,)) for p in arrivals]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results).count(Participant.Status.IN_PROGRESS) == 5
    held = Participant.objects.filter(study=study, status=Participant.Status.IN_PROGRESS)
    assert sorted(held.values_list("slot", flat=True)) == [0, 1, 2, 3, 4]
