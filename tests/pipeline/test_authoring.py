"""Study authoring: the go-live checklist, edits while live and their record, Duplicate, design JSON, onboarding."""

from __future__ import annotations

import json
import math
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation

from studies.actions import (
    compute_config_hash,
    design_document,
    do_duplicate_study,
    do_go_live,
    do_queue_generation,
)
from studies.checklist import check_go_live
from studies.export import study_configuration
from studies.models import (
    BackgroundQuestion,
    Candidate,
    CultureTag,
    LiveEdit,
    MethodConfig,
    MetricValue,
    ParticipantGroup,
    Question,
    Study,
)
from studies.models.study import StudyFrozenError
from studies.workers.generate import run_generation

from .conftest import build_study, complete_design, png_bytes

pytestmark = pytest.mark.django_db

TEXTS = {"consent": "Consent.", "instructions": "Rate.", "thanks": "Thanks."}
TEXTS_ZH = {"consent": "同意。", "instructions": "评分。", "thanks": "谢谢。"}


@pytest.fixture
def ready(researcher, culture, fake_methods, django_capture_on_commit_callbacks):
    """A study in English and Chinese with everything the checklist asks for, candidates generated and scored."""
    study = build_study(researcher, culture, slug="ready", methods=("tint", "tint"))
    Study.objects.filter(pk=study.pk).update(languages=["en", "zh-hans"], completion_code="DONE42",
                                                 trials_per_participant=2)
    study.refresh_from_db()
    complete_design(study, quota=20)
    Study.objects.filter(pk=study.pk).update(texts={"en": TEXTS, "zh-hans": TEXTS_ZH})
    Question.objects.filter(study=study).update(texts={"en": "How?", "zh-hans": "如何？"})
    with django_capture_on_commit_callbacks(execute=False):
        do_queue_generation(study, score=False)
    # One generation task per method configuration and seed, as the queue sends them.
    for mc, seed in set(study.candidates.values_list("method_config", "seed")):
        ids = study.candidates.filter(method_config=mc, seed=seed).values_list("pk", flat=True)
        run_generation(list(ids), device="cpu")
    MetricValue.objects.bulk_create(MetricValue(candidate=c, name="ssim", version="1", value=0.5)
                                    for c in study.candidates.all())
    study.refresh_from_db()
    return study


def _codes(study, level="errors"):
    return [(f.code, f.message) for f in getattr(check_go_live(study), level)]


def _client(client, user, password):
    assert client.login(username=user.username, password=password)
    return client


class TestChecklist:
    def test_a_complete_study_has_no_findings(self, ready):
        checklist = check_go_live(ready)
        assert checklist.findings == []
        summary = checklist.summary
        # 2 contents x 2 styles x 2 methods = 8 Likert candidates; one content per screen: 2 rated screens.
        assert (summary.practice, summary.rated, summary.attention) == (1, 2, 2)
        assert summary.screens == 5
        only = summary.questions[0]
        assert only.candidates == 8 and only.trials == 2
        assert only.ratings_per_candidate == {"Everyone": pytest.approx(20 * 2 / 8)}
        assert summary.seconds == 120 + 8 + 2 * 6 + 2 * 8

    def test_missing_texts_in_an_offered_language_block(self, ready):
        ready.texts = {"en": TEXTS, "zh-hans": {**TEXTS_ZH, "consent": ""}}
        ready.save()
        Question.objects.filter(study=ready).update(texts={"en": "How?"})
        bq = ready.background_questions.get(key="art_training")
        bq.choices = [{"value": "none", "labels": {"en": "None"}}, *bq.choices[1:]]
        bq.save()
        errors = _codes(ready)
        assert ("missing_text", "the consent text is missing in Simplified Chinese") in errors
        assert ("missing_text", "question 1 has no text in Simplified Chinese") in errors
        assert ("missing_text", "background question “art_training” has no Simplified Chinese label for none") in errors
        with pytest.raises(ValidationError, match="the consent text is missing in Simplified Chinese"):
            do_go_live(ready, confirm_warnings=True)

    def test_eligibility_without_background_questions_blocks(self, ready):
        """The demo's failure: groups refer to cultural_background, the study asks nothing."""
        ready.background_questions.all().delete()
        errors = _codes(ready)
        assert ("eligibility_missing_question", "group “Everyone” requires an answer to “cultural_background”, but "
                "the study has no such background question") in errors

    @pytest.mark.parametrize("rule, code, message", [
        ({"cultural_background": ["martian"]}, "eligibility_missing_value",
         "group “Everyone” accepts “cultural_background” = martian, which is not an answer of that question "
         "(western, chinese, japanese, other)"),
        ({"cultural_background": []}, "group_unreachable", "group “Everyone” accepts no answer to “cultural_background”"),
        ({"years_abroad": {"min": 5, "max": 1}}, "group_unreachable",
         "group “Everyone” needs “years_abroad” between 5 and 1: no answer can be"),
        ({"art_training": {"min": 1}}, "group_unreachable",
         "group “Everyone” needs a number range for “art_training”, which is not a number question"),
    ])
    def test_eligibility_rules_that_no_answer_meets_block(self, ready, rule, code, message):
        ParticipantGroup.objects.filter(study=ready).update(eligibility=rule)
        assert (code, message) in _codes(ready)

    def test_no_groups_blocks(self, ready):
        ParticipantGroup.objects.filter(study=ready).delete()
        assert ("no_groups", "the study has no participant groups (every participant would be screened out)") in \
            _codes(ready)

    def test_method_without_finished_candidates_blocks(self, ready):
        MethodConfig.objects.create(study=ready, label="late", method="tint", params={"strength": 0.5})
        assert ("method_no_candidates", "method “late” has no finished candidates") in _codes(ready)

    def test_question_without_enough_candidates_blocks(self, ready):
        Candidate.objects.filter(method_config__label="tint-1").update(status="failed")
        Question.objects.create(study=ready, kind="2afc", dimension="overall", order=5,
                                texts={"en": "Which?", "zh-hans": "哪个？"})
        assert ("question_no_candidates", "question 2 (Two-alternative forced choice) needs candidates of at least "
                "two methods for one content × style; none are available") in _codes(ready)

    def test_status_candidates_and_questions(self, researcher, culture, fake_methods):
        study = build_study(researcher, culture, slug="bare")
        errors = [m for _c, m in _codes(study)]
        assert errors[:2] == ["no candidates have been generated", "the study has no questions"]
        Candidate.objects.create(study=study, content=study.content_images.first(),
                                 style=study.style_images.first(), method_config=study.method_configs.first())
        assert ("generation_pending", "1 candidate(s) are still queued or running") in _codes(study)

    def test_warnings_need_a_confirmation(self, ready):
        MetricValue.objects.filter(candidate__study=ready).delete()
        Candidate.objects.filter(pk=ready.candidates.first().pk).update(status="failed")
        ParticipantGroup.objects.filter(study=ready).update(quota=3)
        Study.objects.filter(pk=ready.pk).update(completion_code="", trials_per_participant=20)
        ready.refresh_from_db()
        warnings = dict(_codes(ready, "warnings"))
        assert warnings["scoring_unfinished"] == "scoring is unfinished: 7 of 7 finished candidates have no metric " \
                                                 "values yet"
        assert warnings["failed_candidates"] == "1 candidate(s) failed and will not be shown"
        assert "small_quota" not in warnings, "one warning per group: the one below says more"
        assert warnings["too_few_participants"] == (
            "group “Everyone” has a quota of 3, fewer than the 5 participants the report needs for inference, so its "
            "results can only be described; raise the quota")
        with translation.override("ja"):
            assert "推測に必要" in dict(_codes(ready, "warnings"))["too_few_participants"]
        ParticipantGroup.objects.filter(study=ready).update(quota=5)
        assert "too_few_participants" not in dict(_codes(ready, "warnings"))
        assert dict(_codes(ready, "warnings"))["small_quota"] == ("group “Everyone” has a quota of 5 (fewer than 10 "
                                                                  "participants)")
        ParticipantGroup.objects.filter(study=ready).update(quota=3)
        assert warnings["fewer_trials"].startswith("trials per participant is 20 but each participant gets 2 rated")
        assert warnings["fewer_trials"].endswith("upload more content photos for more rated screens, or lower trials "
                                                 "per participant"), "the warning says what to do"
        for language, advice in (("zh-hans", "请上传更多内容照片"), ("ja", "コンテンツ写真を追加でアップロード")):
            with translation.override(language):
                assert advice in dict(_codes(ready, "warnings"))["fewer_trials"], language
        assert warnings["no_completion"].startswith("there is no completion code or URL")
        assert _codes(ready) == []
        with pytest.raises(ValidationError, match="has warnings to confirm") as exc:
            do_go_live(ready)
        assert exc.value.code == "needs_confirmation"
        assert Study.objects.get(pk=ready.pk).status != Study.Status.LIVE
        assert do_go_live(ready, confirm_warnings=True).status == Study.Status.LIVE

    def test_adaptive_pairs_that_cannot_leave_the_exposure_phase_warn(self, ready):
        question = Question.objects.create(study=ready, kind="2afc", dimension="overall", order=5,
                                           pair_design="adaptive", min_exposure=50,
                                           texts={"en": "Which?", "zh-hans": "哪个？"})
        summary = check_go_live(ready).summary.questions[-1]
        assert summary.min_exposure == 50 and "adaptive pairs: each candidate is shown 50 times" in summary.note
        shown = summary.ratings_per_candidate["Everyone"]
        assert 0 < shown < 50
        warnings = dict(_codes(ready, "warnings"))
        assert warnings["adaptive_never_starts"].startswith(f"{question}: at full quota each candidate is shown "
                                                            "no more than the 50 times per group")
        # Shown exactly the minimum: every comparison goes to the showings, none to information.
        assert shown > 2
        Question.objects.filter(pk=question.pk).update(min_exposure=math.ceil(shown))
        assert "adaptive_never_starts" in dict(_codes(ready, "warnings"))
        Question.objects.filter(pk=question.pk).update(min_exposure=math.ceil(shown) - 1)
        assert "adaptive_never_starts" not in dict(_codes(ready, "warnings"))
        Question.objects.filter(pk=question.pk).update(pair_design="balanced", min_exposure=50)
        assert check_go_live(ready).summary.questions[-1].note == ""
        assert "adaptive_never_starts" not in dict(_codes(ready, "warnings"))

    def test_questions_that_never_reach_the_reports_minimum_ratings_warn(self, ready):
        from studies.analysis import guards, minimums

        assert guards.DesignMinimums is minimums.DesignMinimums, "one definition for the report and the checklist"
        assert minimums.DesignMinimums().min_ratings_per_candidate == 1.5
        # 8 Likert candidates, 2 contents: each participant rates 2 (one per content), whatever the trials.
        ParticipantGroup.objects.filter(study=ready).update(quota=4)
        warnings = dict(_codes(ready, "warnings"))
        assert warnings["too_few_ratings"] == (
            f"{ready.questions.get()}: at full quota each candidate gets only 1.0 (Everyone) ratings, fewer than "
            "the 1.5 the report needs for inference, so its results can only be described: raise the quotas to at "
            "least 6 participants per group, or show fewer candidates (fewer styles, methods or seeds); more trials "
            "per participant would not help, as a participant rates each content photo at most once per question")
        for language, advice in (("zh-hans", "至少 6 名"), ("ja", "6 人以上")):
            with translation.override(language):
                assert advice in dict(_codes(ready, "warnings"))["too_few_ratings"], language
        ParticipantGroup.objects.filter(study=ready).update(quota=6)  # 6 × 2 / 8 = 1.5, the minimum itself
        assert "too_few_ratings" not in dict(_codes(ready, "warnings"))
        # One trial per participant where two contents allow two: more trials would help.
        Study.objects.filter(pk=ready.pk).update(trials_per_participant=1)
        ready.refresh_from_db()
        warning = dict(_codes(ready, "warnings"))["too_few_ratings"]
        assert warning.startswith(f"{ready.questions.get()}: at full quota each candidate gets only 0.8 "
                                  "(Everyone) ratings")
        assert "at least 12 participants per group, raise trials per participant (this question gets 1 of each " \
               "participant's rated screens), or show fewer candidates" in warning
        # A second question with no screens left at all.
        Question.objects.create(study=ready, kind="likert", dimension="overall", order=5,
                                texts={"en": "Overall?", "zh-hans": "总体？"})
        messages = [m for code, m in _codes(ready, "warnings") if code == "too_few_ratings"]
        assert messages[-1].endswith(": no screens at all, as trials per participant (1) is fewer than the questions, "
                                     "so it is never answered; raise trials per participant")
        assert _codes(ready) == [], "a warning, not a blocking problem"

    def test_the_demo_reaches_the_reports_minimum_ratings_at_full_quota(self, researcher, tmp_path):
        """The demo's questions are analysed, not only described, once its groups are full."""
        from studies.demo import DEMO_METHODS, create_demo_study

        palette = iter([(20 * i, 255 - 20 * i, (90 * i) % 256) for i in range(1, 12)])
        images = [("content", f"content/c{i}.png") for i in range(3)]
        images += [("style", f"style/{culture}/{culture}{i}.png") for culture in ("western", "chinese", "japanese")
                   for i in range(2)]
        for _kind, name in images:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_bytes(png_bytes(next(palette)))
        (tmp_path / "manifest.json").write_text(json.dumps({"images": [{"kind": k, "file": f} for k, f in images]}))
        study = create_demo_study(tmp_path, researcher, image_size=32)
        for label, method, params in DEMO_METHODS:
            MethodConfig.objects.create(study=study, label=label, method=method, params=params)
        Candidate.objects.bulk_create(
            Candidate(study=study, content=c, style=s, method_config=m, status=Candidate.Status.DONE, image="x.png")
            for c in study.content_images.all() for s in study.style_images.all() for m in study.method_configs.all())
        summary = check_go_live(study).summary
        assert [q.candidates for q in summary.questions] == [54, 54, 54]
        assert "too_few_ratings" not in dict(_codes(study, "warnings"))

    def test_checklist_page_blocks_then_goes_live(self, client, researcher, ready):
        c = _client(client, researcher, "pw-alice")
        ready.texts = {"en": TEXTS, "zh-hans": {**TEXTS_ZH, "consent": ""}}
        ready.save()
        url = reverse("admin:studies_study_checklist", args=[ready.pk])
        page = c.get(url).content.decode()
        assert "The consent text is missing in Simplified Chinese." in page and 'id="go-live" disabled' in page
        resp = c.post(url, follow=True)
        assert "cannot go live" in " ".join(str(m) for m in resp.context["messages"])
        ready.texts = {"en": TEXTS, "zh-hans": TEXTS_ZH}
        ready.save()
        resp = c.post(url, follow=True)
        assert resp.redirect_chain[-1][0] == reverse("admin:studies_study_run", args=[ready.pk])
        assert Study.objects.get(pk=ready.pk).status == Study.Status.LIVE
        page = resp.content.decode()
        assert f"/s/{ready.slug}/?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}&amp;STUDY_ID=" in page
        assert "DONE42" in page

    def test_checklist_findings_follow_the_readers_language(self, client, researcher, ready):
        c = _client(client, researcher, "pw-alice")
        ready.texts = {"en": TEXTS, "zh-hans": {**TEXTS_ZH, "consent": ""}}
        ready.completion_code = ""
        ready.save()
        url = reverse("admin:studies_study_checklist", args=[ready.pk])
        zh = c.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        assert "缺少简体中文的知情同意文本。" in zh and "没有完成码或完成网址：招募平台无法确认谁已完成。" in zh
        assert "consent text is missing" not in zh and "no completion code" not in zh
        assert re.search(r"<strong>\d+ 分 \d\d 秒</strong>", zh) and " min " not in zh
        en = c.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert "The consent text is missing in Simplified Chinese." in en and "缺少" not in en
        assert re.search(r"<strong>\d+ min \d\d s</strong>", en)

    def test_checklist_of_a_live_study_says_it_is_live_and_keeps_the_warnings(self, client, researcher, ready):
        live = do_go_live(ready, confirm_warnings=True)
        Study.objects.filter(pk=live.pk).update(completion_code="")
        live.refresh_from_db()
        checklist = check_go_live(live)
        assert checklist.errors == [] and not checklist.can_go_live
        assert "no_completion" in dict(_codes(live, "warnings"))
        c = _client(client, researcher, "pw-alice")
        url = reverse("admin:studies_study_checklist", args=[live.pk])
        page = c.get(url).content.decode()
        assert 'id="checklist-live"' in page and "The study is live (since " in page
        assert "block" not in page.lower() and "checklist-errors" not in page and "go-live-form" not in page
        assert 'id="checklist-warnings"' in page and "There is no completion code or URL" in page
        assert "confirm to go live" not in page
        zh = c.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        assert "The study is live" not in zh and 'id="checklist-live"' in zh
        with translation.override("en"), pytest.raises(ValidationError, match="cannot go live: the study is live") \
                as exc:
            do_go_live(live, confirm_warnings=True)
        assert exc.value.code == "not_ready"
        assert Study.objects.get(pk=live.pk).live_at == live.live_at

    def test_go_live_action_on_one_study_opens_its_checklist(self, client, researcher, ready):
        c = _client(client, researcher, "pw-alice")
        resp = c.post(reverse("admin:studies_study_changelist"),
                      {"action": "go_live", "_selected_action": [ready.pk]})
        assert resp.status_code == 302 and resp["Location"] == reverse("admin:studies_study_checklist",
                                                                       args=[ready.pk])


def _form_data(response) -> dict:
    """The POST data a browser would send for an admin change form as rendered (readonly fields left out)."""
    data = {}

    def add(form):
        for bound in form:
            value = bound.value()
            if value is None or value is False:
                continue
            if value is True:
                value = "on"
            data[bound.html_name] = [str(v) for v in value] if isinstance(value, list | tuple) else str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:
            add(form)
    return data


class TestLiveEdits:
    @pytest.fixture
    def live(self, ready):
        return do_go_live(ready, confirm_warnings=True)

    def test_texts_change_and_are_recorded_structure_is_refused(self, client, researcher, live):
        c = _client(client, researcher, "pw-alice")
        url = reverse("admin:studies_study_change", args=[live.pk])
        data = _form_data(c.get(url))
        data["text_consent__zh_hans"] = "新的同意书。"
        question_prefix = next(k for k in data if k.endswith("-text__zh_hans")).rsplit("-", 1)[0]
        data[f"{question_prefix}-text__zh_hans"] = "风格如何？"
        group_prefix = next(k for k in data if k.endswith("-quota")).rsplit("-", 1)[0]
        data[f"{group_prefix}-quota"] = "40"
        data["closes_at_0"], data["closes_at_1"] = "2030-01-01", "12:00:00"
        data["trials_per_participant"] = "99"  # frozen: not on the form, ignored
        resp = c.post(url, data)
        assert resp.status_code == 302, resp.context and resp.context["adminform"].form.errors
        live.refresh_from_db()
        assert live.texts["zh-hans"]["consent"] == "新的同意书。" and live.trials_per_participant == 2
        assert live.questions.get().texts["zh-hans"] == "风格如何？"
        assert live.participant_groups.get().quota == 40
        records = {(e.target, e.field): e for e in LiveEdit.objects.filter(study=live)}
        consent = records[("study", "texts.zh-hans.consent")]
        assert (consent.before, consent.after, consent.changed_by_name) == ("同意。", "新的同意书。", "alice")
        assert records[("question 1", "texts.zh-hans")].after == "风格如何？"
        assert (records[("group everyone", "quota")].before, records[("group everyone", "quota")].after) == (20, 40)
        assert ("study", "closes_at") in records
        assert compute_config_hash(live) == live.config_hash, "wording and quotas are not the design"
        appendix = study_configuration(live.pk)["changes_while_live"]
        assert {(r["target"], r["field"]) for r in appendix} == set(records)

    def test_title_per_language_reaches_participants_and_is_recorded(self, client, researcher, live):
        c = _client(client, researcher, "pw-alice")
        url = reverse("admin:studies_study_change", args=[live.pk])
        data = _form_data(c.get(url))
        assert data["text_title__zh_hans"] == ""
        data["text_title__zh_hans"] = "风格研究"
        resp = c.post(url, data)
        assert resp.status_code == 302, resp.context and resp.context["adminform"].form.errors
        live.refresh_from_db()
        assert live.texts["zh-hans"]["title"] == "风格研究" and "title" not in live.texts.get("en", {})
        record = LiveEdit.objects.get(study=live, field="texts.zh-hans.title")
        assert (record.before, record.after) == (None, "风格研究")
        entry = reverse("studies:participant_entry", args=[live.slug])
        zh = client.get(entry, {"lang": "zh-hans"}).content.decode()
        en = client.get(entry, {"lang": "en"}).content.decode()
        assert "<title>风格研究" in zh and f'<span class="study-title">{live.title}</span>' in en

    def test_design_rows_refuse_change_in_save(self, live):
        question = live.questions.get()
        question.scale_points = 3
        with pytest.raises(StudyFrozenError, match="its questions are frozen"):
            question.save()
        group = live.participant_groups.get()
        group.eligibility = {"cultural_background": ["japanese"]}
        with pytest.raises(StudyFrozenError, match="groups' eligibility and cultures are frozen"):
            group.save()
        bq = live.background_questions.get(key="cultural_background")
        bq.choices = [*bq.choices, {"value": "korean", "labels": {"en": "Korean"}}]
        with pytest.raises(StudyFrozenError, match="its background questions are frozen"):
            bq.save()
        with pytest.raises(StudyFrozenError):
            Question.objects.create(study=live, kind="likert", dimension="overall", texts={"en": "New?"})
        with pytest.raises(StudyFrozenError):
            live.background_questions.get(key="age_band").delete()
        live.trials_per_participant = 3
        with pytest.raises(StudyFrozenError, match="trials_per_participant"):
            live.save()
        bq.refresh_from_db()
        bq.choices[0]["labels"]["en"] = "Western (Europe, the Americas, Oceania, …)"
        bq.save()  # a label is wording
        assert Question.objects.get(pk=question.pk).scale_points == 7

    def test_standalone_question_page_refuses_format_and_records_text(self, client, researcher, live):
        c = _client(client, researcher, "pw-alice")
        question = live.questions.get()
        url = reverse("admin:studies_question_change", args=[question.pk])
        page = c.get(url)
        data = _form_data(page)
        assert "scale_points" not in data, "the response format is read-only while live"
        data["scale_points"] = "3"
        data["text__en"] = "How well, really?"
        assert c.post(url, data).status_code == 302
        question.refresh_from_db()
        assert (question.scale_points, question.texts["en"]) == (7, "How well, really?")
        assert LiveEdit.objects.get(study=live, target="question 1").field == "texts.en"

    def test_group_page_shows_eligibility_read_only_and_saves_the_quota(self, client, researcher, live):
        c = _client(client, researcher, "pw-alice")
        group = live.participant_groups.get()
        ParticipantGroup.objects.filter(pk=group.pk).update(eligibility={"cultural_background": ["chinese"]})
        url = reverse("admin:studies_participantgroup_change", args=[group.pk])
        page = c.get(url)
        assert page.status_code == 200
        data = _form_data(page)
        assert "eligibility_answers" not in data and "slug" not in data and "study" not in data
        assert '{"cultural_background": ["chinese"]}' in page.content.decode().replace("&quot;", '"')
        data.update(quota="35", name="All of them")
        resp = c.post(url, data)
        assert resp.status_code == 302, resp.context and resp.context["adminform"].form.errors
        group.refresh_from_db()
        assert (group.quota, group.name, group.eligibility) == (35, "All of them", {"cultural_background": ["chinese"]})
        assert LiveEdit.objects.get(study=live, target="group everyone", field="quota").after == 35

    def test_every_change_page_of_a_live_study_opens(self, client, researcher, live):
        c = _client(client, researcher, "pw-alice")
        rows = [live, live.questions.first(), live.background_questions.first(), live.participant_groups.first(),
                live.method_configs.first(), live.content_images.first(), live.style_images.first(),
                live.candidates.first()]
        for row in rows:
            url = reverse(f"admin:studies_{row._meta.model_name}_change", args=[row.pk])
            assert c.get(url).status_code == 200, url

    def test_refused_answer_values_are_named_and_labels_still_change(self, client, researcher, live):
        c = _client(client, researcher, "pw-alice")
        bq = live.background_questions.get(key="cultural_background")
        url = reverse("admin:studies_backgroundquestion_change", args=[bq.pk])
        page = c.get(url)
        shown = " ".join(str(m) for m in page.context["messages"])
        assert "this row cannot be deleted and its design is read-only. Cannot change: key, kind, answer values, " \
               "required, order. Still editable: the question's wording and the answers' labels" in shown
        data = _form_data(page)
        renamed = data["choices_text"].replace("western |", "westerner |", 1)
        assert renamed != data["choices_text"]
        refused = c.post(url, {**data, "choices_text": renamed})
        assert refused.status_code == 200
        error = " ".join(refused.context["adminform"].form.non_field_errors())
        assert "its background questions are frozen" in error
        assert error.endswith("Cannot change: answer values. Still editable: the question's wording and the "
                              "answers' labels (each change is recorded).")
        bq.refresh_from_db()
        assert bq.values()[0] == "western"
        relabelled = data["choices_text"].replace("western | Western", "western | The West", 1)
        assert c.post(url, {**data, "choices_text": relabelled}).status_code == 302
        bq.refresh_from_db()
        assert (bq.values()[0], bq.choices[0]["labels"]["en"]) == ("western", "The West (Europe, the Americas, Oceania)")
        with translation.override("ja"):
            question = live.questions.get()
            question.scale_points = 3
            with pytest.raises(StudyFrozenError) as exc:
                question.save()
            assert exc.value.messages[0].endswith("変更できないもの：尺度の段階数。 引き続き変更できるもの：質問文と両端の"
                                                  "ラベル（変更はすべて記録されます）。")

    def test_run_panel_and_audit_list_show_which_label_changed(self, client, researcher, live):
        from studies.actions import do_save_live_edit

        bq = live.background_questions.get(key="cultural_background")
        before = bq.choices[1]["labels"]["ja"]
        bq.choices[1]["labels"]["ja"] = before + "（改訂）"
        do_save_live_edit(bq, user=researcher)
        record = LiveEdit.objects.get(study=live, target="background question cultural_background")
        assert record.field == "choices" and len(record.before) == len(record.after) > 2
        assert record.changes() == [("choices[1].labels.ja", before, before + "（改訂）")]
        c = _client(client, researcher, "pw-alice")
        panel = c.get(reverse("admin:studies_study_run", args=[live.pk])).content.decode()
        edits = panel[panel.index('id="live-edits"'):]
        assert "background question cultural_background · <code>choices[1].labels.ja</code>" in edits
        assert f"<td>{before}</td><td>{before}（改訂）</td>" in edits
        assert "[{" not in edits, "the whole list is not shown"
        listed = c.get(reverse("admin:studies_liveedit_changelist")).content.decode()
        assert f"<li><code>choices[1].labels.ja</code> · {before} → {before}（改訂）</li>" in listed
        detail = c.get(reverse("admin:studies_liveedit_change", args=[record.pk])).content.decode()
        assert f"<li><code>choices[1].labels.ja</code> · {before} → {before}（改訂）</li>" in detail

    def test_delete_pages_of_a_live_study_say_why(self, client, researcher, live):
        c = _client(client, researcher, "pw-alice")
        rows = [live.questions.get(), live.background_questions.get(key="age_band"), live.participant_groups.get(),
                live.method_configs.first(), live.content_images.first(), live.style_images.first()]
        for row in rows:
            change = reverse(f"admin:studies_{row._meta.model_name}_change", args=[row.pk])
            assert 'class="deletelink"' not in c.get(change).content.decode(), change
            resp = c.post(reverse(f"admin:studies_{row._meta.model_name}_delete", args=[row.pk]), {"post": "yes"},
                          follow=True)
            assert resp.redirect_chain[0] == (change, 302)
            shown = " ".join(str(m) for m in resp.context["messages"])
            assert f"“{row}” cannot be deleted: study “{live.title}” is live and its design is frozen" in shown
            assert "Duplicate the study as a new draft to change its design." in shown
            assert type(row).objects.filter(pk=row.pk).exists()

    def test_culture_tags_in_use_cannot_be_renamed(self, live, culture):
        culture.name = "Ink"
        with pytest.raises(StudyFrozenError, match="culture tags it uses"):
            culture.save()
        culture.refresh_from_db()
        culture.names = {"ja": "水墨画"}
        culture.save()  # translations of the name are wording
        unused = CultureTag.objects.create(slug="unused", name="Unused")
        unused.name = "Renamed"
        unused.save()

    def test_hash_covers_questions_background_and_groups(self, live):
        before = compute_config_hash(live)
        for queryset, change in ((Question.objects.filter(study=live), {"scale_points": 5}),
                                 (BackgroundQuestion.objects.filter(study=live, key="age_band"), {"required": False}),
                                 (ParticipantGroup.objects.filter(study=live), {"eligibility": {}})):
            queryset.update(**change)
            after = compute_config_hash(live)
            assert after != before, change
            before = after


class TestDuplicateAndDesign:
    def test_duplicate_copies_the_design_not_the_participants(self, client, researcher, other_researcher, ready):
        live = do_go_live(ready, confirm_warnings=True)
        c = _client(client, researcher, "pw-alice")
        resp = c.post(reverse("admin:studies_study_changelist"),
                      {"action": "duplicate", "_selected_action": [live.pk]}, follow=True)
        assert "copied to the draft" in " ".join(str(m) for m in resp.context["messages"])
        copy = Study.objects.exclude(pk=live.pk).get()
        assert copy.status == Study.Status.DRAFT and copy.slug == "ready-copy" and not copy.config_hash
        assert list(copy.owners.all()) == [researcher]
        for rel in ("content_images", "style_images", "method_configs", "questions", "background_questions",
                    "participant_groups"):
            assert getattr(copy, rel).count() == getattr(live, rel).count() > 0, rel
        assert copy.candidates.count() == 0 and copy.participants.count() == 0
        assert copy.texts == live.texts
        assert sorted(copy.content_images.values_list("sha256", flat=True)) == sorted(
            live.content_images.values_list("sha256", flat=True))
        second = do_duplicate_study(live, owner=other_researcher)
        assert second.slug == "ready-copy-2"

    def test_design_round_trip(self, client, researcher, ready):
        c = _client(client, researcher, "pw-alice")
        resp = c.post(reverse("admin:studies_study_changelist"),
                      {"action": "export_design", "_selected_action": [ready.pk]})
        document = json.loads(resp.content)
        assert document == json.loads(json.dumps(design_document(ready), default=str))
        upload = SimpleUploadedFile("d.json", resp.content, content_type="application/json")
        resp = c.post(reverse("admin:studies_study_import_design"), {"design": upload, "title": "Again"})
        assert resp.status_code == 302, resp.context["form"].errors
        again = Study.objects.get(title="Again")
        assert design_document(again)["questions"] == document["questions"]
        assert design_document(again)["groups"] == document["groups"]
        bad = SimpleUploadedFile("d.json", b'{"format": "stylestudy-design", "questions": [{"kind": "x"}]}')
        resp = c.post(reverse("admin:studies_study_import_design"), {"design": bad})
        assert "question 1" in str(resp.context["form"].errors["design"])
        assert not Study.objects.filter(title="Imported study").exists()


class TestOnboarding:
    def test_migration_creates_the_researchers_group(self):
        group = Group.objects.get(name="researchers")
        codes = set(group.permissions.values_list("codename", flat=True))
        assert {"add_study", "change_study", "view_participant", "add_methodconfig", "view_liveedit"} <= codes

    def test_add_researcher_command(self, client):
        call_command("add_researcher", "carol", "--email", "carol@example.org")
        user = get_user_model().objects.get(username="carol")
        assert user.is_staff and not user.is_superuser and user.email == "carol@example.org"
        assert user.groups.filter(name="researchers").exists() and not user.has_usable_password()
        user.set_password("pw-carol")
        user.save()
        c = _client(client, user, "pw-carol")
        assert c.get(reverse("admin:studies_study_changelist")).status_code == 200
        page = c.get(reverse("admin:studies_study_add")).content.decode()
        assert "text_consent__zh_hans" in page
        with pytest.raises(CommandError, match="not an e-mail address"):
            call_command("add_researcher", "dave", "--email", "nope")

    def test_superuser_action_makes_researchers(self, client, researcher):
        User = get_user_model()
        root = User.objects.create_superuser("root", password="pw-root")
        erin = User.objects.create_user("erin", password="x")
        c = _client(client, root, "pw-root")
        c.post(reverse("admin:auth_user_changelist"), {"action": "make_researchers", "_selected_action": [erin.pk]})
        erin.refresh_from_db()
        assert erin.is_staff and erin.groups.filter(name="researchers").exists()
        c.logout()
        c = _client(client, researcher, "pw-alice")
        resp = c.get(reverse("admin:auth_user_changelist"))
        assert resp.status_code == 403

    def test_new_study_form_defaults_and_view_site(self, client, researcher):
        c = _client(client, researcher, "pw-alice")
        resp = c.get(reverse("admin:studies_study_add"))
        form = resp.context["adminform"].form
        assert form["owners"].value() == [researcher.pk] and form["languages"].value() == ["en"]
        page = resp.content.decode()
        assert "<title>" in page and "stylestudy" in page and "Django administration" not in page
        assert c.get("/").status_code == 200
        data = _form_data(resp)
        data.update(title="Blank", slug="blank", text_consent__en="Consent.")
        assert c.post(reverse("admin:studies_study_add"), data).status_code == 302
        study = Study.objects.get(slug="blank")
        assert study.texts == {"en": {"consent": "Consent."}}
        assert "cultural_background" in set(study.background_questions.values_list("key", flat=True))

    def test_per_language_labels_follow_the_readers_language(self, client, researcher):
        """The study form's per-language boxes are labelled in the language of each request."""
        c = _client(client, researcher, "pw-alice")
        url = reverse("admin:studies_study_add")
        zh = c.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        en = c.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert "向参与者显示的标题" in zh and "Title shown to participants" not in zh
        assert "Title shown to participants" in en and "向参与者显示的标题" not in en

    def test_method_form_offers_only_present_families(self, client, researcher, study, monkeypatch):
        monkeypatch.setattr("studies.admin_forms.family_weights",
                            lambda f: ([], ["w1"]) if f == "fake-family" else ([], []))
        c = _client(client, researcher, "pw-alice")
        url = reverse("admin:studies_methodconfig_add") + f"?study={study.pk}"
        page = c.get(url).content.decode()
        assert 'value="fake-family"' not in page and "fake-family is absent" in page
        assert "method-params method-tint" in page and "admin_method_form.js" in page
        resp = c.post(url, {"study": study.pk, "label": "f", "method": "tint", "family": "fake-family"})
        assert "python -m stylecore weights fetch w1" in resp.context["adminform"].form.errors["family"][0]
        resp = c.post(url, {"study": study.pk, "label": "ok", "method": "tint"})
        assert resp["Location"] == reverse("admin:studies_study_change", args=[study.pk])


class TestPages:
    @pytest.mark.parametrize("name", ["studies_study_checklist", "studies_study_run"])
    def test_other_researchers_cannot_reach_the_new_pages(self, client, other_researcher, ready, name):
        c = _client(client, other_researcher, "pw-bob")
        url = reverse(f"admin:{name}", args=[ready.pk])
        assert c.get(url).status_code == 404
        assert c.post(url).status_code == 404
        assert Study.objects.get(pk=ready.pk).status != Study.Status.LIVE

    def test_progress_page_refreshes_until_scoring_ends(self, client, researcher, ready):
        c = _client(client, researcher, "pw-alice")
        url = reverse("admin:studies_study_progress", args=[ready.pk])
        MetricValue.objects.filter(candidate__study=ready).delete()
        resp = c.get(url)
        assert resp.context["still_running"] is True, "candidates finished just now, none scored yet"
        assert 'http-equiv="refresh"' in resp.content.decode()
        MetricValue.objects.bulk_create(MetricValue(candidate=x, name="ssim", version="1", value=0.1)
                                        for x in ready.candidates.all())
        resp = c.get(url)
        assert resp.context["still_running"] is False and 'http-equiv="refresh"' not in resp.content.decode()
        do_go_live(ready, confirm_warnings=True)
        assert "Cannot go live yet" not in c.get(url).content.decode()

    def test_progress_page_says_why_metric_values_are_missing(self, client, researcher, ready):
        fetch = "weights missing: run `python -m stylecore weights fetch lpips-alex`"
        MetricValue.objects.bulk_create(MetricValue(candidate=x, name="lpips-alex", version="1", value=None,
                                                    unavailable_reason=fetch) for x in ready.candidates.all())
        resp = _client(client, researcher, "pw-alice").get(reverse("admin:studies_study_progress", args=[ready.pk]))
        row = next(m for m in resp.context["progress"]["metrics"] if m["name"] == "lpips-alex")
        assert (row["available"], row["reason"]) == (0, fetch)
        table = resp.content.decode().split('id="metric-values"')[1].split("</table>")[0]
        assert "python -m stylecore weights fetch lpips-alex" in table

    def test_a_question_stores_only_its_formats_settings(self, client, researcher, study):
        """A 2AFC question keeps no Likert scale size or end labels; a Likert question needs its size."""
        c = _client(client, researcher, "pw-alice")
        url = reverse("admin:studies_question_add")
        page = c.get(url)
        assert page.context["adminform"].form.fields["kind"].widget.attrs["data-kind-fields"] == json.dumps(
            Question.kind_fields), "the form's script hides the other formats' fields"
        data = {**_form_data(page), "study": study.pk, "kind": "2afc", "dimension": "overall",
                "text__en": "Which fits?", "low__en": "Poorly", "high__en": "Well"}
        assert data["scale_points"] == "7", "the default is what a browser sends for the hidden field"
        assert c.post(url, data).status_code == 302
        question = study.questions.get(kind="2afc")
        assert (question.scale_points, question.scale_labels) == (None, {})
        refused = c.post(url, {**data, "kind": "likert", "scale_points": "", "text__en": "How well?"})
        assert refused.status_code == 200 and "needs its number of scale points" in refused.content.decode()
        assert not study.questions.filter(kind="likert", texts__en="How well?").exists()


def test_bulk_delete_refuses_rows_of_a_live_study(client, researcher, ready, culture):
    """The changelist's "delete selected" bypasses Model.delete(); live design rows still stay."""
    live = do_go_live(ready, confirm_warnings=True)
    c = _client(client, researcher, "pw-alice")
    ids = list(live.background_questions.values_list("pk", flat=True))
    resp = c.post(reverse("admin:studies_backgroundquestion_changelist"),
                  {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert resp.status_code == 403
    assert live.background_questions.count() == len(ids)
    root = get_user_model().objects.create_superuser("root", password="pw-root")
    c.force_login(root)
    c.post(reverse("admin:studies_culturetag_changelist"),
           {"action": "delete_selected", "_selected_action": [culture.pk], "post": "yes"})
    assert CultureTag.objects.filter(pk=culture.pk).exists()
