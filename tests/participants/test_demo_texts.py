"""What the demo study tells participants, in its three languages: a consent text true to what the
next page asks, and a title in the participant's language."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from studies.demo import create_demo_study

from .helpers import entry_url

pytestmark = pytest.mark.django_db

ACCEPT = {"en": "en-GB,en;q=0.9", "zh-hans": "zh-CN,zh;q=0.9", "ja": "ja-JP,ja;q=0.9"}

#: Each background question the consent text names, as the consent text names it.
NAMED = {
    "cultural_background": {"en": "cultural background", "zh-hans": "文化背景", "ja": "文化的背景"},
    "country_grew_up": {"en": "the country you grew up in", "zh-hans": "成长的国家", "ja": "育った国"},
    "languages": {"en": "languages", "zh-hans": "语言", "ja": "言語"},
    "years_abroad": {"en": "lived abroad", "zh-hans": "在国外生活的年数", "ja": "海外で暮らした年数"},
    "art_training": {"en": "training in visual art", "zh-hans": "视觉艺术训练", "ja": "視覚芸術の訓練"},
    "age_band": {"en": "age band", "zh-hans": "年龄段", "ja": "年齢層"},
}
#: What else the text must say: no name or contact details; the recruiter id only pseudonymised.
PROMISES = {
    "en": ["not asked for your name or contact details", "pseudonymised", "deleted"],
    "zh-hans": ["不会询问您的姓名或联系方式", "假名化", "删除"],
    "ja": ["お名前や連絡先はお尋ねしません", "仮名化", "削除"],
}
#: The claim the demo's consent once made, though its next page asks for background answers.
NOTHING_COLLECTED = {"en": "No personal data", "zh-hans": "不收集任何个人数据", "ja": "個人データは収集しません"}
TITLES = {"en": "Demo: style transfer across art cultures", "zh-hans": "演示：跨艺术文化的风格迁移",
          "ja": "デモ：芸術文化を越えたスタイル変換"}


@pytest.fixture
def demo(tmp_path):
    owner = get_user_model().objects.create_user("owner")
    # No sample images are needed for the texts: an empty folder.
    return create_demo_study(tmp_path, owner)


@pytest.mark.parametrize("lang", ["en", "zh-hans", "ja"])
def test_the_consent_text_says_what_the_background_page_asks(demo, lang):
    asked = set(demo.background_questions.values_list("key", flat=True))
    assert asked == set(NAMED), "the demo asks the standard background questions"
    consent = demo.text("consent", lang)
    assert NOTHING_COLLECTED[lang] not in consent
    missing = [key for key, names in NAMED.items() if names[lang] not in consent]
    assert missing == [], f"{lang}: the consent text does not name {missing}"
    assert [p for p in PROMISES[lang] if p not in consent] == []


@pytest.mark.parametrize("lang", ["en", "zh-hans", "ja"])
def test_the_title_is_in_the_participants_language(demo, lang):
    assert (demo.text("title", lang) or demo.title) == TITLES[lang]
    # The study is a draft here (no images generated): its link shows the not-open page, with the header.
    page = Client(HTTP_ACCEPT_LANGUAGE=ACCEPT[lang]).get(entry_url(demo)).content.decode()
    assert f'<span class="study-title">{TITLES[lang]}</span>' in page
    assert f"<title>{TITLES[lang]}</title>" in page
