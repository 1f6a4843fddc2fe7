"""The not-found and server-error pages participants may meet: translated, and telling nothing more."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from studies import views

from .factories import make_study
from .helpers import consent, entry_url, session_url, start, submit_background

pytestmark = pytest.mark.django_db

NOT_FOUND = {"en": "Page not found", "zh-hans": "页面不存在", "ja": "ページが見つかりません"}
SERVER_ERROR = {"en": "Something went wrong", "zh-hans": "出现了问题", "ja": "問題が発生しました"}
ACCEPT = {"en": "en-GB,en;q=0.9", "zh-hans": "zh-CN,zh;q=0.9", "ja": "ja-JP,ja;q=0.9"}


@pytest.fixture(autouse=True)
def _production(settings):
    # Django shows its technical pages when DEBUG is on; participants meet these only with DEBUG off.
    settings.DEBUG = False
    settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 0


def _assert_not_found_page(reply, lang: str) -> str:
    text = reply.content.decode()
    assert reply.status_code == 404
    assert f'<html lang="{lang}">' in text
    assert f"<h1>{NOT_FOUND[lang]}</h1>" in text
    assert reply["Cache-Control"] == "no-store"
    # Django's own English page is not what the participant sees.
    assert "The requested resource was not found on this server" not in text and "Not Found" not in text
    return text


@pytest.mark.parametrize("lang", ["en", "zh-hans", "ja"])
def test_a_withdrawn_sessions_link_is_a_translated_not_found_page(lang):
    """After withdrawal the old session link answers 404 in the browser's language, naming nothing."""
    study = make_study(slug="gone-away")
    client = Client(HTTP_ACCEPT_LANGUAGE=ACCEPT[lang])
    participant = consent(client, study, lang=lang)
    submit_background(client, participant)
    withdrawn = client.post(reverse("studies:participant_withdraw", args=[participant.token]), {"confirm": "withdraw"})
    assert withdrawn.status_code == 200
    for url in (session_url(participant.token), reverse("studies:participant_withdraw", args=[participant.token])):
        text = _assert_not_found_page(client.get(url), lang)
        # Nothing about the session or the study: not the token, not the study's name.
        assert participant.token not in text and study.title not in text and study.slug not in text


def test_a_sessions_missing_page_is_in_the_participants_language():
    """The session exists (in Japanese) but the page does not: Japanese, whatever the browser asks."""
    study = make_study()
    client = Client(HTTP_ACCEPT_LANGUAGE=ACCEPT["en"])
    participant = consent(client, study, lang="ja")
    submit_background(client, participant)
    start(client, participant)
    _assert_not_found_page(client.get(reverse("studies:participant_image", args=[participant.token, 999, "0"])), "ja")
    _assert_not_found_page(client.get(session_url(participant.token) + "no-such-page"), "ja")


@pytest.mark.parametrize("lang", ["en", "zh-hans", "ja"])
def test_unknown_addresses_are_in_the_browsers_language(lang):
    client = Client(HTTP_ACCEPT_LANGUAGE=ACCEPT[lang])
    _assert_not_found_page(client.get("/s/no-such-study/"), lang)
    _assert_not_found_page(client.get("/no/such/page"), lang)
    _assert_not_found_page(client.get("/p/not-a-token/"), lang)


def test_link_language_wins_for_an_unknown_study():
    reply = Client(HTTP_ACCEPT_LANGUAGE=ACCEPT["en"]).get("/s/no-such-study/?lang=zh-hans")
    _assert_not_found_page(reply, "zh-hans")


def test_a_draft_study_link_keeps_its_own_page():
    """A study that exists but is not open still says so (its own 404 page), not the generic one."""
    study = make_study(status="draft")
    reply = Client().get(entry_url(study))
    assert reply.status_code == 404 and "This study is not open" in reply.content.decode()


@pytest.mark.parametrize("lang", ["en", "zh-hans", "ja"])
def test_a_server_error_is_a_translated_page_without_details(monkeypatch, lang):
    def bug(*_a, **_k):
        raise KeyError("secret detail of a real bug")

    monkeypatch.setattr(views, "access_participant_by_token", bug)
    client = Client(HTTP_ACCEPT_LANGUAGE=ACCEPT[lang], raise_request_exception=False)
    reply = client.get(session_url("a" * 43))
    text = reply.content.decode()
    assert reply.status_code == 500
    assert f'<html lang="{lang}">' in text and f"<h1>{SERVER_ERROR[lang]}</h1>" in text
    assert "secret detail" not in text and "KeyError" not in text and "Traceback" not in text


def test_participants_get_the_translated_page_also_with_debug_on(settings):
    """The demo runs with DEBUG on: a withdrawn session's link still shows the participants' page,
    not Django's technical one with the site's URL patterns; the admin keeps Django's."""
    settings.DEBUG = True
    study = make_study(slug="debug-on")
    client = Client(HTTP_ACCEPT_LANGUAGE=ACCEPT["ja"])
    participant = consent(client, study, lang="ja")
    submit_background(client, participant)
    client.post(reverse("studies:participant_withdraw", args=[participant.token]), {"confirm": "withdraw"})
    text = _assert_not_found_page(client.get(session_url(participant.token)), "ja")
    assert "URLconf" not in text and participant.token not in text
    assert client.get("/admin/studies/study/999999/change/").status_code in (302, 404)
