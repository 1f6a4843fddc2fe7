"""The admin under the strict Content-Security-Policy in real headless Chromium: its scripts still run."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import expect

from studies.models import Study
from tests.participants.factories import make_study

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page, live_server) -> None:
    """Sign in to the admin as the superuser the test created."""
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-root-browser")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_admin_pages_run_under_the_csp(browser, live_server, artifacts):
    get_user_model().objects.create_superuser("root", password="pw-root-browser")
    study = make_study(slug="b-admin")
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    refused: list[str] = []
    page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)
    _sign_in(page, live_server)
    # The study form's scripts: the owners' two-box selector is built by JavaScript.
    page.goto(live_server.url + reverse("admin:studies_study_change", args=[study.pk]))
    page.wait_for_selector("#id_owners_from", state="attached")
    # The slug is filled from the title by the prepopulate script on the add form.
    page.goto(live_server.url + reverse("admin:studies_study_add"))
    page.locator("#id_title").press_sequentially("Ink and oil")
    # (expect() polls from Python: a string predicate would need eval, which the CSP forbids too.)
    expect(page.locator("#id_slug")).to_have_value("ink-and-oil")
    page.goto(live_server.url + reverse("admin:studies_study_preview", args=[study.pk]))
    width = page.evaluate("() => document.querySelector('img.candidate').getBoundingClientRect().width")
    assert 0 < width <= 128, width
    page.screenshot(path=str(artifacts / "admin-preview.png"), full_page=True)
    # The erasure confirmation of the changelist action.
    page.goto(live_server.url + reverse("admin:studies_study_changelist"))
    page.check(f"input[name=_selected_action][value='{study.pk}']")
    page.select_option("select[name=action]", "erase_participant_data")
    page.click("button[name=index]")
    page.wait_for_selector("#erase-form")
    page.screenshot(path=str(artifacts / "admin-erase-confirm.png"), full_page=True)
    assert refused == [], refused


def test_question_form_shows_only_the_chosen_formats_fields(browser, live_server, artifacts):
    get_user_model().objects.create_superuser("root", password="pw-root-browser")
    study = make_study(slug="b-kinds", status=Study.Status.DRAFT)
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    _sign_in(page, live_server)
    page.goto(live_server.url + reverse("admin:studies_study_change", args=[study.pk]))
    own = {"likert": ("scale_points", "low__en", "high__en"), "ranking": ("n_candidates",),
           "2afc": ("pair_design", "min_exposure")}

    def shown(row: int) -> dict[str, bool]:
        return {name: page.locator(f"#id_questions-{row}-{name}").is_visible()
                for name in ("text__en", *(n for names in own.values() for n in names))}

    for row, kind in enumerate(["likert", "2afc", "ranking"]):
        assert page.locator(f"#id_questions-{row}-kind").input_value() == kind
        assert shown(row) == {"text__en": True, **{n: k == kind for k, names in own.items() for n in names}}, kind
    page.locator("#questions-1").screenshot(path=str(artifacts / "admin-question-2afc.png"))
    page.select_option("#id_questions-1-kind", "likert")
    assert shown(1) == shown(0)
    page.click("#questions-group .add-row a")
    page.select_option("#id_questions-3-kind", "ranking")
    assert shown(3) == shown(2)


@pytest.mark.parametrize("width", [1280, 800])
def test_method_choice_stays_inside_the_form(browser, live_server, artifacts, width):
    """The method options carry long descriptions: the select shrinks to the form's width."""
    get_user_model().objects.create_superuser("root", password="pw-root-browser")
    study = make_study(slug="b-method", status=Study.Status.DRAFT)
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    _sign_in(page, live_server)
    page.goto(live_server.url + reverse("admin:studies_methodconfig_add") + f"?study={study.pk}")
    select = page.locator("#id_method").bounding_box()
    row = page.locator(".form-row.field-method").bounding_box()
    assert select["x"] + select["width"] <= row["x"] + row["width"], (select, row)
    page.screenshot(path=str(artifacts / f"admin-method-add-{width}.png"), full_page=True)


def test_reports_deleted_by_a_withdrawal_are_named_on_the_report_list_and_in_the_log(browser, live_server, artifacts):
    from django.test import Client

    from studies.actions.erasure import do_withdraw
    from studies.models import ErasureRecord, StudyReport
    from tests.participants.helpers import consent, run_to_end, start, submit_background

    get_user_model().objects.create_superuser("root", password="pw-root-browser")
    study = make_study(slug="b-withdraw")
    client = Client()
    leaving = consent(client, study)
    submit_background(client, leaving)
    start(client, leaving)
    run_to_end(client, leaving, stop_after=2)
    kept = StudyReport.objects.create(study=study, status="done", participant_ids=[])
    held = StudyReport.objects.create(study=study, status="done", participant_ids=[leaving.pk])
    do_withdraw(leaving)
    assert list(StudyReport.objects.values_list("pk", flat=True)) == [kept.pk]
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    _sign_in(page, live_server)
    page.goto(live_server.url + reverse("admin:studies_studyreport_changelist"))
    notice = page.locator("ul.messagelist li.warning")
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text(f"report {held.pk} (requested ")
    expect(notice).to_contain_text("built from the erased participants' responses")
    page.screenshot(path=str(artifacts / "admin-report-list-erasure-notice.png"), full_page=True)
    page.goto(live_server.url + reverse("admin:studies_erasurerecord_changelist"))
    expect(page.locator("td.field-which_reports")).to_contain_text(f"report {held.pk} (requested ")
    record = ErasureRecord.objects.get()
    assert record.reports == 1
    page.goto(live_server.url + reverse("admin:studies_erasurerecord_change", args=[record.pk]))
    expect(page.locator(".field-which_reports")).to_contain_text("built from the erased participants' responses")
    page.screenshot(path=str(artifacts / "admin-erasure-record-reports.png"), full_page=True)
