"""Security properties of the participant side, each with its own test."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

import pytest
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from studies.access import access_participant_by_token, pseudonymise
from studies.models import Participant, Response
from tests.conftest import require

from .factories import make_study
from .helpers import (
    answer,
    answer_for,
    consent,
    entry_url,
    session_url,
    start,
    submit_background,
)

pytestmark = pytest.mark.django_db

PID = "5f1e9c0d2b7a4e66b3c2d1a0"


def _ready(client, study, **params) -> Participant:
    participant = consent(client, study, **params)
    submit_background(client, participant)
    start(client, participant)
    participant.refresh_from_db()
    return participant


def test_token_is_unguessable_and_not_the_database_id():
    """Tokens carry 256 random bits; database ids and malformed tokens find nothing."""
    study = make_study()
    client = Client()
    a, b = consent(client, study), consent(Client(), study)
    for p in (a, b):
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", p.token)
        assert str(p.pk) != p.token
    assert a.token != b.token
    assert client.get(session_url(str(a.pk))).status_code == 404
    assert client.get(f"/p/{a.pk}/").status_code == 404
    assert client.get(session_url(a.token[:-1] + ("A" if a.token[-1] != "A" else "B"))).status_code == 404
    with pytest.raises(Exception):  # noqa: B017 - Http404
        access_participant_by_token("../../etc/passwd")


def test_csrf_is_enforced_on_every_form():
    """Every participant POST without a CSRF token is refused; with it, accepted."""
    study = make_study()
    client = Client(enforce_csrf_checks=True)
    page = client.get(entry_url(study))
    assert client.post(entry_url(study), {"decision": "accept"}).status_code == 403
    csrf = page.cookies["csrftoken"].value
    response = client.post(entry_url(study), {"decision": "accept", "csrfmiddlewaretoken": csrf})
    assert response.status_code == 302
    participant = Participant.objects.get()
    token = participant.token
    targets = [
        reverse("studies:participant_background", args=[token]),
        reverse("studies:participant_start", args=[token]),
        reverse("studies:participant_language", args=[token]),
        reverse("studies:participant_answer", args=[token, 0]),
    ]
    for url in targets:
        assert client.post(url, {"lang": "ja"}).status_code == 403, url
    assert client.get(session_url(token)).content.count(b"csrfmiddlewaretoken") >= 2  # language + background


def test_one_participant_cannot_read_or_answer_anothers_trials():
    """Only the token's own trials are reachable: answers and images are scoped to it."""
    study = make_study()
    ca, cb = Client(), Client()
    a, b = _ready(ca, study), _ready(cb, study)
    b_trial = b.trials.order_by("position").first()
    a_trials = a.trials.count()
    # A posts to a position that exists only for B: nothing is recorded for B.
    beyond = max(a_trials, b.trials.count()) + 5
    assert ca.post(reverse("studies:participant_answer", args=[a.token, beyond]), {"value": 1}).status_code == 404
    ca.post(reverse("studies:participant_answer", args=[a.token, b_trial.position]), answer_for(b_trial))
    assert not Response.objects.filter(trial__participant=b).exists()
    # Images: own trials only, by position under the token.
    assert ca.get(reverse("studies:participant_image", args=[a.token, 0, "0"])).status_code == 200
    assert ca.get(reverse("studies:participant_image", args=[a.token, beyond, "0"])).status_code == 404
    assert ca.get(reverse("studies:participant_image", args=[a.token, 0, "99"])).status_code == 404
    # B's page never shows A's token or image URLs.
    page_b = cb.get(session_url(b.token)).content.decode()
    assert a.token not in page_b
    # A session cookie from B does not open A's session on the study link.
    assert cb.get(entry_url(study))["Location"] == session_url(b.token)


def test_double_submit_and_back_button_never_create_a_second_response():
    """Resending an answered trial, or answering a future one, leaves one response per trial."""
    study = make_study()
    client = Client()
    p = _ready(client, study)
    first, second = p.trials.order_by("position")[:2]
    client.get(session_url(p.token))
    # Stored: the answer's response is the next trial's page; a double click stores nothing, back to the session.
    assert answer(client, p, first).status_code == 200
    assert answer(client, p, first)["Location"] == session_url(p.token)  # double click
    assert Response.objects.filter(trial=first).count() == 1
    # Skipping ahead is refused until the current trial is answered.
    third = p.trials.order_by("position")[2]
    answer(client, p, third)
    assert not Response.objects.filter(trial=third).exists()
    client.get(session_url(p.token))
    answer(client, p, second)
    # Back button: the browser resubmits the first page's form with another answer.
    url = reverse("studies:participant_answer", args=[p.token, first.position])
    client.post(url, {"value": 1, "choice": 1, "ranking": "0,1,2"})
    assert Response.objects.filter(trial__participant=p).count() == 2
    assert Response.objects.get(trial=first).value == answer_for(first).get("value")


def test_per_session_rate_limit(settings):
    """More POSTs than the per-session limit in a minute get 429 Too Many Requests."""
    settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 5
    study = make_study()
    client = Client()
    p = consent(client, study)
    url = reverse("studies:participant_language", args=[p.token])
    codes = [client.post(url, {"lang": "ja"}).status_code for _ in range(7)]
    assert codes[:5] == [302] * 5
    assert codes[5:] == [429, 429]
    # Another session is not affected.
    other = consent(Client(), study)
    assert Client().post(reverse("studies:participant_language", args=[other.token]), {"lang": "ja"}).status_code == 302


def test_entry_rate_limit_per_client(settings):
    """New sessions from one address are limited per minute."""
    settings.STYLESTUDY_ENTRY_RATE_LIMIT_PER_MINUTE = 3
    study = make_study()
    codes = [Client().post(entry_url(study), {"decision": "accept"}).status_code for _ in range(4)]
    assert codes == [302, 302, 302, 429]
    assert Participant.objects.count() == 3


def test_recruiter_id_is_stored_only_as_a_keyed_hash(settings):
    """The recruiter id is kept as HMAC-SHA256 under the pseudonym key, never in clear or as a plain hash."""
    settings.STYLESTUDY_PSEUDONYM_KEY = "test-key-1"
    study = make_study()
    client = Client()
    p = consent(client, study, PROLIFIC_PID=PID, STUDY_ID="st1", SESSION_ID="se1")
    expected = hmac.new(b"test-key-1", f"{study.pk}:{PID}".encode(), hashlib.sha256).hexdigest()
    assert p.external_id_hash == expected
    assert p.external_id_hash != hashlib.sha256(PID.encode()).hexdigest()
    assert PID not in repr(model_to_dict(p))
    assert PID not in str(dict(client.session.items()))
    assert PID not in str(client.cookies)
    settings.STYLESTUDY_PSEUDONYM_KEY = "test-key-2"
    assert pseudonymise(study, PID) != expected
    assert p.recruiter == "prolific" and p.recruiter_study_id == "st1"


def test_nothing_personal_in_logs(caplog):
    """Request logs show neither participant tokens nor recruiter ids."""
    study = make_study()
    client = Client(enforce_csrf_checks=True)
    with caplog.at_level(logging.DEBUG):
        page = client.get(entry_url(study, PROLIFIC_PID=PID))
        csrf = page.cookies["csrftoken"].value
        client.post(entry_url(study), {"decision": "accept", "PROLIFIC_PID": PID, "csrfmiddlewaretoken": csrf})
        p = Participant.objects.get()
        client.get(f"/p/{p.token}/trial/999")  # 404 (GET on a POST route: 405) is logged with its path
        client.post(reverse("studies:participant_start", args=[p.token]))  # CSRF failure, logged
        client.get(reverse("studies:participant_image", args=[p.token, 999, "0"]))  # 404
    assert caplog.records, "expected request log lines"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/p/<token>" in text
    assert p.token not in text
    assert PID not in text


def test_token_does_not_leak_to_other_sites():
    """Participant pages send no Referer to other origins and are never cached."""
    study = make_study()
    client = Client()
    p = consent(client, study)
    page = client.get(session_url(p.token))
    assert page["Referrer-Policy"] == "same-origin"
    assert "no-store" in page["Cache-Control"]


def test_rate_limit_in_redis_counts_in_one_round_trip(settings, monkeypatch):
    """With Redis as the cache (one client per pool) a request's count is one INCR (the window's first also sets the
    expiry), the count is the cache's own integer, and the limit holds."""
    import redis

    from studies.ratelimit import RateLimited, check_rate_limit

    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError as exc:
        require(False, f"Redis is not reachable at {url}: {exc}")
    settings.CACHES = {"default": {"BACKEND": "studies.cache.RedisCache", "LOCATION": url}}
    from django.core.cache import cache

    cache.clear()
    # One client per connection pool, not one per operation (Django's own builds one each time).
    assert cache._cache.get_client(write=True) is cache._cache.get_client("any-key", write=True)
    made = []
    monkeypatch.setattr(redis.Redis, "__init__",
                        lambda self, *args, _init=redis.Redis.__init__, **kw: made.append(1) or _init(self, *args, **kw))
    sent = []
    execute = redis.Redis.execute_command
    monkeypatch.setattr(redis.Redis, "execute_command",
                        lambda self, *args, **options: sent.append(args[0]) or execute(self, *args, **options))
    for _ in range(3):
        check_rate_limit("test", "participant-1", limit=3)
    assert sent == ["INCRBY", "EXPIRE", "INCRBY", "INCRBY"]
    assert made == []
    with pytest.raises(RateLimited):
        check_rate_limit("test", "participant-1", limit=3)
    check_rate_limit("test", "participant-2", limit=3)  # another key is not affected
    (key,) = [k for k in redis.Redis.from_url(url).keys("*rl:test:*")
              if int(redis.Redis.from_url(url).get(k)) == 4]
    assert 0 < redis.Redis.from_url(url).ttl(key) <= 65
    assert cache.get(key.decode().split(":", 2)[2]) == 4  # the cache reads the counter as its own value
    cache.clear()
