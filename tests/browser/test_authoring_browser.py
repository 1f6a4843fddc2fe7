"""A newcomer builds a study from a blank admin in real Chromium, runs it with a real worker, and builds the report.

Only the researcher's account (``manage.py add_researcher``, as the README
says) and two culture tags (entered by a superuser in the admin) exist
beforehand; everything else goes through the pages a researcher sees.
Screenshots of each admin step go to ``tests/browser_artifacts/authoring-*.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from studies.actions import compute_config_hash
from studies.export import study_frame
from studies.models import (
    Candidate,
    LiveEdit,
    MetricValue,
    Participant,
    Study,
    StudyReport,
)
from tests.browser.test_participant_browser import (
    _answer_trial,
    _background,
    _context,
    _current_trial,
)
from tests.pipeline.helpers import wait_for
from tests.workers import celery_worker, purge_queues

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password"


def _shot(page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"authoring-{name}.png"), full_page=True)


def _login(page, base: str, username: str) -> None:
    page.goto(base + "/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def _submit(page, name: str = "_continue") -> None:
    with page.expect_navigation():
        page.click(f"input[name={name}]")
    errors = page.locator(".errornote, .errorlist")
    assert errors.count() == 0, errors.all_inner_texts()


def _action(page, base: str, study: Study, action: str) -> None:
    page.goto(base + "/admin/studies/study/")
    page.check(f"input[name=_selected_action][value='{study.pk}']")
    page.select_option("select[name=action]", action)
    with page.expect_navigation():
        page.click("button[name=index]")


def _participant(browser, link: str, lang: str, culture: str, artifacts: Path) -> Participant:
    context = _context(browser, lang, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(link)
    assert page.locator("html").get_attribute("lang") == lang
    page.click("button[value=accept]")
    page.wait_for_selector("form[novalidate]")
    _background(page, keyboard=False, culture=culture)
    page.wait_for_selector("form[data-once] button.primary")
    page.click("form[data-once] button.primary")
    shot = False
    for _ in range(40):
        page.wait_for_load_state("load")
        if page.locator("#completion-code").count():
            break
        trial = _current_trial(page)
        if not shot and not trial.attention_kind and not trial.is_practice:
            page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
            page.wait_for_selector("form[data-stimulus-box]")
            # The artwork and the candidate fill one display box, neither enlarged beyond its pixels.
            sizes = page.evaluate("() => [...document.querySelectorAll('img[data-stimulus]')].map(i => {"
                                  "const r = i.getBoundingClientRect(); return [r.width, r.height, i.naturalWidth]; })")
            assert len(sizes) == 2 and len({round(max(w, h)) for w, h, _n in sizes}) == 1, sizes
            assert all(w <= n + 0.5 for w, _h, n in sizes), sizes
            _shot(page, artifacts, f"trial-{lang}")
            page.click(".references img")
            page.wait_for_selector("dialog.zoom[open]")
            natural = page.evaluate("() => document.querySelector('.references img').naturalWidth")
            note = page.locator("dialog.zoom p").inner_text()
            assert f"{natural} ×" in note
            shown = page.evaluate("() => { const i = document.querySelector('dialog.zoom img'), "
                                  "r = i.getBoundingClientRect(); return [r.width / r.height, "
                                  "i.naturalWidth / i.naturalHeight, r.width, i.naturalWidth]; }")
            assert shown[0] == pytest.approx(shown[1], rel=0.02) and shown[2] <= shown[3] + 0.5, shown
            _shot(page, artifacts, f"trial-zoom-{lang}")
            page.click("dialog.zoom")
            shot = True
        with page.expect_navigation():
            if trial.attention_kind or trial.is_practice:
                _answer_trial(page, trial, keyboard=False)
            else:
                # Ratings that differ between trials and participants (the report's models need variance).
                page.check(f"input[name=value][value='{1 + (2 * trial.position + len(lang)) % 5}']")
                page.click("button[data-submit]")
    else:
        raise AssertionError("did not reach the completion page")
    token = re.search(r"/p/([^/]+)/", page.url)[1]
    context.close()
    return Participant.objects.get(token=token)


def test_newcomer_builds_runs_and_reports_a_study(browser, live_server, artifacts, weights_dir, samples_dir,
                                                  tmp_path):
    base = live_server.url
    User = get_user_model()
    User.objects.create_superuser("root", password=PASSWORD)
    call_command("add_researcher", "newcomer", "--email", "new@example.org")
    newcomer = User.objects.get(username="newcomer")
    newcomer.set_password(PASSWORD)
    newcomer.save()

    # A superuser enters the two cultures the study uses.
    admin_context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = admin_context.new_page()
    _login(page, base, "root")
    for slug, name in (("western-oil", "Western oil painting"), ("chinese-ink", "Chinese ink wash")):
        page.goto(base + "/admin/studies/culturetag/add/")
        page.fill("#id_slug", slug)
        page.fill("#id_name", name)
        _submit(page, "_save")
    admin_context.close()

    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, base, "newcomer")
    assert "stylestudy" in page.locator("#site-name").inner_text()
    assert "Django administration" not in page.content()
    _shot(page, artifacts, "01-admin-home")
    with page.expect_navigation():
        page.click("#user-tools a[href='/']")  # "View site"
    assert "stylestudy" in page.locator("h1").inner_text()

    # 1. A new study: English and Chinese, the Chinese consent left out on purpose.
    page.goto(base + "/admin/studies/study/add/")
    page.locator("#id_title").press_sequentially("Ink and oil")  # typed: the slug follows
    assert page.input_value("#id_slug") == "ink-and-oil"
    assert page.is_checked("input[name=languages][value=en]")
    page.check("input[name=languages][value=zh-hans]")
    page.fill("#id_text_consent__en", "You will rate pictures. Taking part is voluntary.")
    for key, en, zh in (("instructions", "Rate each picture.", "请为每幅图像评分。"),
                        ("thanks", "Thank you!", "谢谢！")):
        page.fill(f"#id_text_{key}__en", en)
        page.fill(f"#id_text_{key}__zh_hans", zh)
    page.fill("#id_image_size", "64")
    page.fill("#id_trials_per_participant", "2")
    page.fill("#id_completion_code", "INKOIL")
    _shot(page, artifacts, "02-new-study-form")
    _submit(page)
    study = Study.objects.get(slug="ink-and-oil")
    assert list(study.owners.all()) == [newcomer]
    assert study.background_questions.filter(key="cultural_background").exists()

    # 2. Two content photos and one artwork of each of two cultures.
    photos = sorted((samples_dir / "content").glob("*.jpg"))[:2]
    paintings = {"western-oil": sorted((samples_dir / "style" / "western").glob("*.jpg"))[0],
                 "chinese-ink": sorted((samples_dir / "style" / "chinese").glob("*.jpg"))[0]}
    page.click("text=upload images")
    page.select_option("#id_kind", "content")
    page.set_input_files("#id_files", [str(p) for p in photos])
    with page.expect_navigation():
        page.click("input[type=submit]")
    for slug, path in paintings.items():
        page.select_option("#id_kind", "style")
        page.select_option("#id_culture", label={"western-oil": "Western oil painting",
                                                 "chinese-ink": "Chinese ink wash"}[slug])
        page.set_input_files("#id_files", [str(path)])
        with page.expect_navigation():
            page.click("input[type=submit]")
    _shot(page, artifacts, "03-upload")
    assert (study.content_images.count(), study.style_images.count()) == (2, 2)

    # 3. Two methods, added from the study page; only the chosen method's parameters show.
    page.goto(base + f"/admin/studies/study/{study.pk}/change/")
    for label, method, family in (("Colour transfer", "color", None), ("WCT", "wct", "vgg19-wct")):
        page.click("#add-method")
        page.select_option("#id_method", method)
        page.fill("#id_label", label)
        assert page.locator(f"fieldset.method-{method}").is_visible()
        assert not page.locator("fieldset.method-gatys").is_visible()
        if family:
            page.select_option("#id_family", family)
            _shot(page, artifacts, "04-method-form")
        _submit(page, "_save")
        assert page.url.endswith(f"/admin/studies/study/{study.pk}/change/")
    assert study.method_configs.count() == 2

    # 4. A Likert question in both languages and two groups chosen by background answer.
    page.click("#questions-group .add-row a")
    page.select_option("#id_questions-0-kind", "likert")
    page.select_option("#id_questions-0-dimension", "style_fidelity")
    page.fill("#id_questions-0-scale_points", "5")
    for code, text, low, high in (("en", "How well does the image capture the style of the artwork?",
                                   "Not at all", "Completely"),
                                  ("zh_hans", "这幅图像在多大程度上体现了艺术作品的风格？", "完全没有", "完全体现")):
        page.fill(f"#id_questions-0-text__{code}", text)
        page.fill(f"#id_questions-0-low__{code}", low)
        page.fill(f"#id_questions-0-high__{code}", high)
    for i, (slug, name, culture) in enumerate((("western", "Western participants", "Western oil painting"),
                                               ("chinese", "Chinese participants", "Chinese ink wash"))):
        page.click("#participant_groups-group .add-row a")
        page.fill(f"#id_participant_groups-{i}-slug", slug)
        page.fill(f"#id_participant_groups-{i}-name", name)
        page.select_option(f"#id_participant_groups-{i}-culture", label=culture)
        page.fill(f"#id_participant_groups-{i}-quota", "10")
        page.check(f"input[name='participant_groups-{i}-eligibility_answers'][value='cultural_background={slug}']")
    # Each background question of the eligibility editor in bold, its answers on one line.
    heading_weight, answer_rows = page.evaluate(
        "() => { const q = document.querySelector('#id_participant_groups-0-eligibility_answers > div');"
        " const answers = [...q.querySelectorAll(':scope > div > label')];"
        " return [getComputedStyle(q.querySelector(':scope > label')).fontWeight,"
        " new Set(answers.map(a => Math.round(a.getBoundingClientRect().top))).size]; }")
    assert int(heading_weight) >= 600 and answer_rows == 1, (heading_weight, answer_rows)
    _shot(page, artifacts, "05-study-design")
    _submit(page)
    assert study.questions.count() == 1 and study.participant_groups.count() == 2

    # 5. Generation and scoring by a real worker at 64 px.
    purge_queues()
    log = tmp_path / "worker.log"
    with celery_worker(log_path=log, STYLESTUDY_METRICS="ssim,colorfulness"):
        _action(page, base, study, "generate_candidates")
        wait_for(lambda: study.candidates.count() == 8 and not study.candidates.exclude(
            status__in=["done", "failed"]).exists(), 300, what="generation", log=log)
        assert study.candidates.filter(status=Candidate.Status.DONE).count() == 8, log.read_text()[-3000:]
        wait_for(lambda: MetricValue.objects.filter(candidate__study=study).values("candidate").distinct().count()
                 == 8, 300, what="scoring", log=log)
        page.goto(base + f"/admin/studies/study/{study.pk}/progress/")
        _shot(page, artifacts, "06-progress")

        # 6. Go live: the checklist blocks on the missing Chinese consent, then lets it through.
        page.goto(base + f"/admin/studies/study/{study.pk}/change/")
        page.click("#checklist-link")
        errors = page.locator("#checklist-errors").inner_text()
        assert "The consent text is missing in Simplified Chinese." in errors
        assert page.locator("#go-live").is_disabled()
        assert "5 screens" in page.locator("#design-summary").inner_text()
        _shot(page, artifacts, "07-checklist-blocked")
        page.goto(base + f"/admin/studies/study/{study.pk}/change/")
        page.fill("#id_text_consent__zh_hans", "您将为图像评分。参与完全自愿。")
        _submit(page)
        page.click("#checklist-link")
        assert page.locator("#checklist-ok").count() == 1
        _shot(page, artifacts, "08-checklist-ok")
        if page.locator("#confirm-warnings").count():
            page.check("#confirm-warnings")
        with page.expect_navigation():
            page.click("#go-live")
        study.refresh_from_db()
        assert study.status == Study.Status.LIVE and study.config_hash
        link = page.locator("#participant-link").inner_text().strip()
        assert link.endswith(f"/s/{study.slug}/")
        assert "PROLIFIC_PID={{%PROLIFIC_PID%}}" in page.locator("#prolific-template").inner_text()
        assert page.locator("#completion-code").inner_text() == "INKOIL"
        _shot(page, artifacts, "09-run-panel")

        # A wording fix while live is saved and recorded; the design stays as it was.
        page.goto(base + f"/admin/studies/study/{study.pk}/change/")
        assert page.locator("#id_trials_per_participant").count() == 0, "frozen while live"
        page.fill("#id_text_consent__zh_hans", "您将为几幅图像评分。参与完全自愿。")
        page.fill("#id_participant_groups-0-quota", "12")
        _submit(page)
        edits = {(e.target, e.field) for e in LiveEdit.objects.filter(study=study)}
        assert {("study", "texts.zh-hans.consent"), ("group chinese", "quota")} <= edits, edits
        study.refresh_from_db()
        assert study.config_hash == compute_config_hash(study)
        page.goto(base + f"/admin/studies/study/{study.pk}/run/")

        # 7. Preview as participant: a marked session.
        with page.expect_popup() as popup:
            page.click("#preview-button")
        preview = popup.value
        preview.wait_for_load_state("load")
        assert "You will rate pictures." in preview.content()
        preview.click("button[value=accept]")
        preview.wait_for_selector("form[novalidate]")
        _background(preview, keyboard=False, culture="western")
        preview.wait_for_selector("form[data-once] button.primary")
        preview_participant = Participant.objects.get(study=study)
        assert preview_participant.is_preview and preview_participant.group.slug == "western"
        preview.close()

        # 8. One participant in English, one in Chinese.
        english = _participant(browser, link, "en", "western", artifacts)
        chinese = _participant(browser, link, "zh-hans", "chinese", artifacts)
        assert english.status == chinese.status == Participant.Status.COMPLETED
        assert (english.group.slug, chinese.group.slug) == ("western", "chinese")
        assert english.completion_code == chinese.completion_code == "INKOIL"
        page.reload()
        counts = page.locator("#counts").inner_text()
        assert re.search(r"Western participants\s+10\s+1\s+0\s+1", counts), counts
        assert "1 preview session so far." in page.locator("#preview").inner_text()
        _shot(page, artifacts, "10-run-panel-counts")

        # 9. The statistical report, built on the cpu queue.
        _action(page, base, study, "build_report")
        wait_for(lambda: StudyReport.objects.filter(study=study, status__in=["done", "failed"]).exists(), 300,
                 what="the report", log=log)
        report = StudyReport.objects.get(study=study)
        assert report.status == StudyReport.Status.DONE, report.error
        page.goto(base + "/admin/studies/studyreport/")
        _shot(page, artifacts, "11-report")
    assert set(study_frame(study.pk)["participant_id"]) == {english.pk, chinese.pk}
    context.close()
