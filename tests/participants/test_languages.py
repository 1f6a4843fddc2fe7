"""The participant interface in English, Simplified Chinese and Japanese."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from studies.models import Participant

from .factories import make_study
from .helpers import consent, entry_url, session_url, start, submit_background

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("accept", "button", "consent_text", "lang"),
    [
        ("en-GB,en;q=0.9", "I agree to take part", "Consent text EN.", "en"),
        ("zh-CN,zh;q=0.9", "我同意参加", "知情同意 ZH。", "zh-hans"),
        ("ja-JP,ja;q=0.9", "参加に同意します", "同意 JA。", "ja"),
    ],
)
def test_browser_language_chooses_interface_and_study_texts(accept, button, consent_text, lang):
    """Accept-Language selects the interface translation and the study's own texts."""
    study = make_study()
    page = Client(HTTP_ACCEPT_LANGUAGE=accept).get(entry_url(study)).content.decode()
    assert button in page
    assert consent_text in page
    assert f'<html lang="{lang}">' in page


def test_link_language_wins_over_browser_and_is_kept():
    """``?lang=`` overrides the browser; the session keeps the language through later pages."""
    study = make_study()
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    page = client.get(entry_url(study, lang="ja")).content.decode()
    assert "参加に同意します" in page
    p = consent(client, study, lang="ja")
    assert p.language == "ja"
    page = client.get(session_url(p.token)).content.decode()
    assert "あなたについて" in page and "最も共感する文化的背景はどれですか？" in page
    # Django's own validation messages are translated too.
    response = submit_background(client, p, cultural_background="")
    assert "このフィールドは必須です" in response.content.decode()


def test_participant_can_switch_language_mid_study():
    """The language menu switches the interface and question texts from the next page on."""
    study = make_study()
    client = Client()
    p = consent(client, study)
    submit_background(client, p)
    start(client, p)
    assert "Practice question" in client.get(session_url(p.token)).content.decode()
    client.post(reverse("studies:participant_language", args=[p.token]), {"lang": "zh-hans"})
    page = client.get(session_url(p.token)).content.decode()
    assert "练习题" in page
    assert Participant.objects.get(pk=p.pk).language == "zh-hans"
    # A language the study does not offer is ignored.
    client.post(reverse("studies:participant_language", args=[p.token]), {"lang": "fr"})
    assert Participant.objects.get(pk=p.pk).language == "zh-hans"


def test_study_languages_limit_the_choice():
    """A study offered only in Japanese shows Japanese to an English browser."""
    study = make_study(languages=["ja"])
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get(entry_url(study)).content.decode()
    assert "参加に同意します" in page
