"""Arrivals at scale: places taken at background submission, abandoned holds, client address, shared limits."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from studies.actions.participants import (
    RecruiterInfo,
    do_consent,
    do_record_response,
    do_submit_background,
)
from studies.assignment import expire_stale_sessions
from studies.models import Participant
from studies.ratelimit import client_address

from .factories import BACKGROUND_POST, make_study
from .helpers import entry_url
from .test_request_cost import answer_for_trial

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


def _arrive(study, **answers) -> Participant:
    return do_submit_background(do_consent(study, RecruiterInfo(), language="en"), {**BACKGROUND_POST, **answers})


def test_consent_alone_holds_no_place():
    """Sessions that only consented (bots opening the link) leave the group's places free."""
    study = make_study(quota=1)
    for _ in range(3):
        do_consent(study, RecruiterInfo(), language="en")
    assert _arrive(study).status == Participant.Status.IN_PROGRESS


def test_abandoned_hold_is_given_back_quickly(settings):
    """A place taken at background submission and never used returns after minutes, not the session timeout."""
    settings.STYLESTUDY_ABANDONED_HOLD_MINUTES = 10
    study = make_study(quota=1)
    assert study.session_timeout_minutes >= 60
    bot = _arrive(study)
    Participant.objects.filter(pk=bot.pk).update(last_seen_at=timezone.now() - timedelta(minutes=9))
    assert _arrive(study).screenout_reason == "full"  # still within the hold time
    Participant.objects.filter(pk=bot.pk).update(last_seen_at=timezone.now() - timedelta(minutes=11))
    real = _arrive(study)
    bot.refresh_from_db()
    assert (bot.status, real.status, real.slot) == ("expired", "in_progress", bot.slot)


def test_answering_session_keeps_its_place_until_the_session_timeout(settings):
    settings.STYLESTUDY_ABANDONED_HOLD_MINUTES = 10
    study = make_study(quota=1)
    first = _arrive(study)
    practice = first.trials.order_by("position").first()
    assert do_record_response(first, practice.position, answer_for_trial(practice)) is not None
    Participant.objects.filter(pk=first.pk).update(last_seen_at=timezone.now() - timedelta(minutes=30))
    assert _arrive(study).screenout_reason == "full"
    assert expire_stale_sessions() == 0
    first.refresh_from_db()
    assert first.status == "in_progress"


def test_periodic_sweep_expires_abandoned_holds(settings):
    settings.STYLESTUDY_ABANDONED_HOLD_MINUTES = 10
    study = make_study(quota=5)
    bot = _arrive(study)
    Participant.objects.filter(pk=bot.pk).update(last_seen_at=timezone.now() - timedelta(minutes=11))
    assert expire_stale_sessions() == 1
    bot.refresh_from_db()
    assert bot.status == "expired"


def test_background_transaction_is_short_and_plans_before_locking():
    """Inside the locked part: no design planning (candidates, questions), few statements, one group locked."""
    study = make_study(quota=5)
    participant = do_consent(study, RecruiterInfo(), language="en")
    with CaptureQueriesContext(connection) as ctx:
        do_submit_background(participant, dict(BACKGROUND_POST, cultural_background="japanese"))
    sql = [q["sql"] for q in ctx.captured_queries]
    begin = next(i for i, q in enumerate(sql) if q.startswith("SAVEPOINT"))
    end = max(i for i, q in enumerate(sql) if q.startswith("RELEASE SAVEPOINT"))
    locked = sql[begin + 1:end]
    assert not [q for q in locked if "studies_candidate" in q.split(" WHERE")[0] or "FROM \"studies_question\"" in q]
    assert len([q for q in locked if not q.startswith(("SAVEPOINT", "RELEASE"))]) <= 7, locked
    group_reads = [q for q in locked if 'FROM "studies_participantgroup"' in q]
    japanese = study.participant_groups.get(slug="japanese").pk
    assert len(group_reads) == 1 and f"IN ({japanese})" in group_reads[0]


def test_client_address_behind_trusted_proxies(settings):
    factory = RequestFactory()

    def request(remote, forwarded=None):
        extra = {"REMOTE_ADDR": remote}
        if forwarded is not None:
            extra["HTTP_X_FORWARDED_FOR"] = forwarded
        return factory.get("/", **extra)

    settings.STYLESTUDY_TRUSTED_PROXIES = []
    assert client_address(request("10.0.0.2", "1.2.3.4")) == "10.0.0.2"  # nobody trusted: header ignored
    settings.STYLESTUDY_TRUSTED_PROXIES = ["10.0.0.0/8", "127.0.0.1"]
    assert client_address(request("10.0.0.2", "198.51.100.7")) == "198.51.100.7"
    # A forged leftmost entry does not win over what the trusted proxy appended.
    assert client_address(request("10.0.0.2", "203.0.113.9, 198.51.100.7")) == "198.51.100.7"
    assert client_address(request("127.0.0.1", "198.51.100.7, 10.0.0.5")) == "198.51.100.7"
    assert client_address(request("192.0.2.1", "198.51.100.7")) == "192.0.2.1"  # not from a proxy
    assert client_address(request("10.0.0.2")) == "10.0.0.2"


def test_entry_limit_counts_each_participant_behind_the_proxy(settings):
    """Behind a proxy two participants do not share one bucket; the same participant is still limited."""
    settings.STYLESTUDY_TRUSTED_PROXIES = ["127.0.0.1"]
    settings.STYLESTUDY_ENTRY_RATE_LIMIT_PER_MINUTE = 1
    study = make_study()

    def enter(address):
        return Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=address).post(
            entry_url(study), {"decision": "accept"})

    assert enter("198.51.100.1").status_code == 302
    assert enter("198.51.100.2").status_code == 302
    assert enter("198.51.100.1").status_code == 429


def test_gunicorn_warns_when_rate_limits_are_per_process():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", REPO / "config" / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    assert "CACHE_URL" in conf.shared_cache_warning(5, "")
    assert conf.shared_cache_warning(5, "redis://127.0.0.1:6379/0") == ""
    assert conf.shared_cache_warning(1, "") == ""
