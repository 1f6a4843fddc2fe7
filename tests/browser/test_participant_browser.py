"""The participant experience in real headless Chromium: three languages, keyboard, phone width."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from studies.models import Participant, Response, Trial
from tests.participants.factories import make_study

pytestmark = pytest.mark.django_db(transaction=True)

TEXTS = {
    "en": {"agree": "I agree to take part", "continue": "Continue", "start": "Start the practice question",
           "next": "Next", "thanks": "Thank you!", "consent": "Consent text EN."},
    "zh-hans": {"agree": "我同意参加", "continue": "继续", "start": "开始练习题", "next": "下一题",
                "thanks": "谢谢您！", "consent": "知情同意 ZH。"},
    "ja": {"agree": "参加に同意します", "continue": "続ける", "start": "練習問題を始める", "next": "次へ",
           "thanks": "ありがとうございました！", "consent": "同意 JA。"},
}
ACCEPT = {"en": "en-US,en;q=0.9", "zh-hans": "zh-CN,zh;q=0.9", "ja": "ja-JP,ja;q=0.9"}


def _context(browser, lang, **kw):
    return browser.new_context(locale={"en": "en-US", "zh-hans": "zh-CN", "ja": "ja-JP"}[lang],
                               extra_http_headers={"Accept-Language": ACCEPT[lang]}, **kw)


def _tab_to(page, selector: str, limit: int = 60) -> None:
    """Press Tab until the focused element matches ``selector`` (keyboard-only navigation)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def _watch_csp(page) -> list[str]:
    """Console messages of anything the Content-Security-Policy refused (filled as the page runs)."""
    refused: list[str] = []
    page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)
    return refused


def _current_trial(page) -> Trial:
    action = page.locator("form[data-trial]").get_attribute("action")
    token, position = re.search(r"/p/([^/]+)/trial/(\d+)", action).groups()
    return Trial.objects.select_related("question").get(participant__token=token, position=int(position))


def _background(page, *, keyboard: bool, culture: str = "chinese") -> None:
    if not keyboard:
        page.check(f"input[name=cultural_background][value={culture}]")
        page.fill("input[name=country_grew_up]", "China")
        page.check("input[name=languages][value=zh]")
        page.fill("input[name=years_abroad]", "2")
        page.check("input[name=art_training][value=some]")
        page.check("input[name=age_band][value='25-34']")
        page.locator("form[novalidate] button[type=submit]").click()
        return
    # Radio groups: Tab focuses the group, arrow keys move the selection.
    _tab_to(page, "input[name=cultural_background]")
    page.keyboard.press("ArrowDown")  # western -> chinese
    _tab_to(page, "input[name=country_grew_up]")
    page.keyboard.type("China")
    _tab_to(page, "input[name=languages][value=zh]")
    page.keyboard.press("Space")
    _tab_to(page, "input[name=years_abroad]")
    page.keyboard.type("2")
    _tab_to(page, "input[name=art_training]")
    page.keyboard.press("ArrowDown")
    _tab_to(page, "input[name=age_band]")
    page.keyboard.press("ArrowDown")
    _tab_to(page, "form[novalidate] button[type=submit]")
    page.keyboard.press("Enter")


def _answer_trial(page, trial: Trial, *, keyboard: bool) -> None:
    kind = page.locator("form[data-trial]").get_attribute("data-kind")
    expected = trial.expected or {}
    if kind == "likert":
        value = expected.get("value", 3)
        if keyboard:
            _tab_to(page, "input[name=value]")
            page.keyboard.press("Space")  # selects 1
            for _ in range(value - 1):
                page.keyboard.press("ArrowRight")
        else:
            page.check(f"input[name=value][value='{value}']")
    elif kind == "2afc":
        choice = expected.get("choice", 1)
        if keyboard:
            _tab_to(page, "input[name=choice]")
            page.keyboard.press("Space")
            if choice == 1:
                page.keyboard.press("ArrowRight")
        else:
            page.locator(f"input[name=choice][value='{choice}']").check(force=True)
    else:
        items = page.locator("[data-ranking] li")
        first_slot = items.nth(0).get_attribute("data-slot")
        if keyboard:
            # Move the first image down one place with its button.
            _tab_to(page, "[data-ranking] li:first-child button[data-move='1']")
            page.keyboard.press("Enter")
        elif page.viewport_size["width"] > 600:
            items.nth(0).locator("img").drag_to(items.nth(2).locator("img"))
        else:
            # Phone width: the Move down button (drag-and-drop is the desktop path).
            items.nth(0).locator("button[data-move='1']").click()
        order = page.locator("input[name=ranking]").input_value().split(",")
        assert order[0] != first_slot, "reordering did not change the ranking"
        assert sorted(order) == sorted(items.evaluate_all("els => els.map(e => e.dataset.slot)"))
    if keyboard:
        _tab_to(page, "button[data-submit]")
        page.keyboard.press("Enter")
    else:
        page.locator("button[data-submit]").click()


def _run_trials(page, artifacts, lang: str, *, keyboard: bool) -> set[str]:
    seen: set[str] = set()
    texts = TEXTS[lang]
    for _ in range(30):
        page.wait_for_load_state("load")
        if page.locator("#completion-code").count():
            return seen
        trial = _current_trial(page)
        kind = page.locator("form[data-trial]").get_attribute("data-kind")
        label = f"attention-{trial.attention_kind}" if trial.attention_kind else kind
        if label not in seen:
            # Every stimulus loaded (preloaded images appear at once) before the screenshot.
            page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
            page.screenshot(path=str(artifacts / f"{lang}-{label}.png"), full_page=True)
            seen.add(label)
        assert page.locator("button[data-submit]").inner_text().strip() == texts["next"]
        # The next trial's images are fetched while this one is on screen.
        preload = (page.locator("form[data-trial]").get_attribute("data-preload") or "").split()
        if preload:
            page.wait_for_function(
                "urls => urls.every(u => performance.getEntriesByType('resource').some(e => e.name.endsWith(u)))",
                arg=preload, timeout=10000,
            )
        with page.expect_navigation():
            _answer_trial(page, trial, keyboard=keyboard)
    raise AssertionError("did not reach the completion page")


@pytest.mark.parametrize(
    ("lang", "keyboard", "viewport"),
    [("en", False, {"width": 1280, "height": 900}), ("zh-hans", True, {"width": 1024, "height": 800}),
     ("ja", False, {"width": 375, "height": 740})],
)
def test_full_run(browser, live_server, artifacts, lang, keyboard, viewport):
    """Consent, questionnaire, instructions, practice, all three trial kinds, attention checks, completion."""
    study = make_study(slug=f"b-{lang}", trials=3)
    context = _context(browser, lang, viewport=viewport)
    page = context.new_page()
    refused = _watch_csp(page)
    texts = TEXTS[lang]
    page.goto(live_server.url + reverse("studies:participant_entry", args=[study.slug])
              + "?PROLIFIC_PID=pid-" + lang + "&STUDY_ID=s1&SESSION_ID=x1")
    assert page.locator("html").get_attribute("lang") == lang
    assert texts["consent"] in page.content()
    if keyboard:
        _tab_to(page, "button[value=accept]")
        page.keyboard.press("Enter")
    else:
        page.get_by_role("button", name=texts["agree"]).click()
    page.wait_for_selector("form[novalidate]")
    _background(page, keyboard=keyboard)
    page.wait_for_selector(f"text={texts['start']}")
    if keyboard:
        _tab_to(page, "form[data-once] button.primary")
        page.keyboard.press("Enter")
    else:
        page.get_by_role("button", name=texts["start"]).click()
    page.wait_for_selector("form[data-trial]")
    seen = _run_trials(page, artifacts, lang, keyboard=keyboard)
    assert {"likert", "2afc", "ranking", "attention-scrambled", "attention-instructed"} <= seen
    assert texts["thanks"] in page.content()
    page.screenshot(path=str(artifacts / f"{lang}-done.png"), full_page=True)
    participant = Participant.objects.get(study=study)
    assert participant.status == Participant.Status.COMPLETED
    assert participant.language == lang
    assert page.locator("#completion-code").inner_text().strip() == participant.completion_code
    assert page.locator("#completion-link").get_attribute("href").endswith("cc=" + participant.completion_code)
    responses = Response.objects.filter(trial__participant=participant)
    assert responses.count() == participant.trials.count()
    assert all(r.client_rt_ms is not None and r.server_rt_ms is not None for r in responses)
    assert set(responses.exclude(passed_attention=None).values_list("passed_attention", flat=True)) == {True}
    if viewport["width"] == 375:
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"page is {overflow}px wider than a 375px phone"
    # The Content-Security-Policy refused nothing: drag/keyboard ranking, preloading and the
    # language switch all run from the static script.
    assert refused == [], refused
    context.close()


def test_screen_out(browser, live_server, artifacts):
    """An ineligible background ends politely with the recruiter's screen-out link."""
    study = make_study(slug="b-screen")
    context = _context(browser, "en")
    page = context.new_page()
    page.goto(live_server.url + reverse("studies:participant_entry", args=[study.slug]))
    page.get_by_role("button", name=TEXTS["en"]["agree"]).click()
    page.wait_for_selector("form[novalidate]")
    _background(page, keyboard=False, culture="other")
    page.wait_for_selector("#screenout-link")
    page.screenshot(path=str(artifacts / "en-screenout.png"), full_page=True)
    assert page.locator("#screenout-link").get_attribute("href") == "https://recruiter.example/screenout"
    assert Participant.objects.get(study=study).status == Participant.Status.SCREENED_OUT
    context.close()


def test_resume_after_reload_and_back_button(browser, live_server):
    """Reload and the same link continue at the next unanswered trial; back + resubmit adds nothing."""
    study = make_study(slug="b-resume", trials=3)
    link = live_server.url + reverse("studies:participant_entry", args=[study.slug]) + "?PROLIFIC_PID=pid-r"
    context = _context(browser, "en")
    page = context.new_page()
    page.goto(link)
    page.get_by_role("button", name=TEXTS["en"]["agree"]).click()
    page.wait_for_selector("form[novalidate]")
    _background(page, keyboard=False)
    page.get_by_role("button", name=TEXTS["en"]["start"]).click()
    for _ in range(2):
        page.wait_for_selector("form[data-trial]")
        with page.expect_navigation():
            _answer_trial(page, _current_trial(page), keyboard=False)
    page.wait_for_selector("form[data-trial]")
    before = _current_trial(page).position
    page.reload()
    page.wait_for_selector("form[data-trial]")
    assert _current_trial(page).position == before == 2
    participant = Participant.objects.get(study=study)
    assert Response.objects.filter(trial__participant=participant).count() == 2
    # Back button: the browser shows the current step again (pages are not cached), never a second answer.
    page.go_back()
    page.wait_for_load_state("load")
    if page.locator("form[data-trial]").count():
        with page.expect_navigation():
            _answer_trial(page, _current_trial(page), keyboard=False)
    assert Response.objects.filter(trial__participant=participant).count() <= 3
    assert all(Response.objects.filter(trial=t).count() <= 1 for t in participant.trials.all())
    # The same recruiter link in a fresh browser continues where the session stands.
    answered = Response.objects.filter(trial__participant=participant).count()
    other = _context(browser, "en").new_page()
    other.goto(link)
    other.wait_for_selector("form[data-trial]")
    assert _current_trial(other).position == answered
    other.context.close()
    context.close()


def test_withdrawal(browser, live_server, artifacts):
    """The withdraw link on a trial page leads to a confirmation; confirming deletes every answer."""
    study = make_study(slug="b-withdraw", trials=3)
    context = _context(browser, "en", viewport={"width": 1024, "height": 800})
    page = context.new_page()
    refused = _watch_csp(page)
    page.goto(live_server.url + reverse("studies:participant_entry", args=[study.slug]) + "?PROLIFIC_PID=pid-w")
    page.get_by_role("button", name=TEXTS["en"]["agree"]).click()
    page.wait_for_selector("form[novalidate]")
    _background(page, keyboard=False)
    page.get_by_role("button", name=TEXTS["en"]["start"]).click()
    page.wait_for_selector("form[data-trial]")
    with page.expect_navigation():
        _answer_trial(page, _current_trial(page), keyboard=False)
    page.wait_for_selector("form[data-trial]")
    participant = Participant.objects.get(study=study)
    assert Response.objects.filter(trial__participant=participant).count() == 1
    page.get_by_role("link", name="Withdraw from the study").click()
    page.wait_for_selector("#confirm-withdraw")
    page.screenshot(path=str(artifacts / "en-withdraw-confirm.png"), full_page=True)
    assert Participant.objects.filter(pk=participant.pk).exists(), "the confirmation page deletes nothing"
    page.get_by_role("button", name="Withdraw and delete my answers").click()
    page.wait_for_selector("#withdrawn-message")
    page.screenshot(path=str(artifacts / "en-withdrawn.png"), full_page=True)
    assert not Participant.objects.filter(pk=participant.pk).exists()
    assert not Response.objects.filter(trial__participant_id=participant.pk).exists()
    assert page.locator("#withdraw-link").count() == 0
    # The old session link now leads to the site's own not-found page, not Django's plain one.
    session = live_server.url + reverse("studies:participant_session", args=[participant.token])
    assert page.goto(session).status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    page.screenshot(path=str(artifacts / "en-not-found.png"), full_page=True)
    assert refused == [], refused
    context.close()
