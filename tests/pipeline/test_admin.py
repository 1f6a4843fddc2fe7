"""The researcher's admin: ownership, method parameter form, uploads, actions, pages, freezing."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from studies.actions import (
    compute_config_hash,
    do_create_study,
    do_go_live,
    do_import_images,
    do_queue_generation,
)
from studies.models import (
    Candidate,
    ContentImage,
    CultureTag,
    MethodConfig,
    Study,
    StudyReport,
)
from studies.models.study import StudyFrozenError
from studies.workers.generate import run_generation

from .conftest import build_study, complete_design, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_studies(researcher, other_researcher, culture, fake_methods, django_capture_on_commit_callbacks):
    mine = build_study(researcher, culture, slug="mine")
    theirs = build_study(other_researcher, culture, slug="theirs")
    for s in (mine, theirs):
        with django_capture_on_commit_callbacks(execute=False):
            do_queue_generation(s, score=False)
        run_generation(list(s.candidates.values_list("pk", flat=True)), device="cpu")
    return mine, theirs


def _client(client, user, password):
    assert client.login(username=user.username, password=password)
    return client


class TestOwnership:
    def test_lists_show_only_own_rows(self, client, researcher, two_studies):
        mine, theirs = two_studies
        c = _client(client, researcher, "pw-alice")
        page = c.get(reverse("admin:studies_study_changelist")).content.decode()
        assert mine.title in page and theirs.title not in page
        for model in ("candidate", "contentimage", "styleimage", "methodconfig"):
            resp = c.get(reverse(f"admin:studies_{model}_changelist"))
            assert resp.status_code == 200, model
            shown = {obj.study_id for obj in resp.context["cl"].result_list}
            assert shown == {mine.pk}, model

    @pytest.mark.parametrize("name", ["studies_study_change", "studies_study_progress", "studies_study_preview",
                                      "studies_study_upload"])
    def test_other_researchers_study_pages_are_unreachable(self, client, researcher, two_studies, name):
        mine, theirs = two_studies
        c = _client(client, researcher, "pw-alice")
        assert c.get(reverse(f"admin:{name}", args=[mine.pk])).status_code == 200
        assert c.get(reverse(f"admin:{name}", args=[theirs.pk])).status_code in (302, 404)

    def test_other_researchers_rows_are_unreachable(self, client, researcher, two_studies):
        _mine, theirs = two_studies
        c = _client(client, researcher, "pw-alice")
        cand = theirs.candidates.first()
        assert c.get(reverse("admin:studies_candidate_change", args=[cand.pk])).status_code in (302, 404)
        img = theirs.content_images.first()
        assert c.get(reverse("admin:studies_contentimage_change", args=[img.pk])).status_code in (302, 404)

    def test_media_urls_are_checked(self, client, researcher, two_studies):
        mine, theirs = two_studies
        c = _client(client, researcher, "pw-alice")
        for study, expected in ((mine, 200), (theirs, 404)):
            for field in (study.candidates.first().image, study.content_images.first().image,
                          study.style_images.first().thumbnail):
                resp = c.get(field.url)
                assert resp.status_code == expected, field.url
        client.logout()
        assert client.get(mine.candidates.first().image.url).status_code == 404, "anonymous: not while draft"

    def test_media_stays_private_when_live(self, client, researcher, other_researcher, two_studies):
        """Participants get stimuli through their session's image view, never /media/."""
        mine, _ = two_studies
        complete_design(mine)
        do_go_live(mine, confirm_warnings=True)
        url = mine.candidates.first().image.url
        assert client.get(url).status_code == 404
        assert _client(client, other_researcher, "pw-bob").get(url).status_code == 404
        assert _client(client, researcher, "pw-alice").get(url).status_code == 200

    def test_superuser_sees_all(self, client, two_studies):
        admin_user = get_user_model().objects.create_superuser("root", password="pw-root")
        c = _client(client, admin_user, "pw-root")
        page = c.get(reverse("admin:studies_study_changelist")).content.decode()
        for study in two_studies:
            assert study.title in page
            assert c.get(study.candidates.first().image.url).status_code == 200

    def test_researcher_cannot_attach_rows_to_another_study(self, client, researcher, two_studies):
        _mine, theirs = two_studies
        c = _client(client, researcher, "pw-alice")
        resp = c.post(reverse("admin:studies_methodconfig_add"),
                      {"study": theirs.pk, "label": "sneaky", "method": "tint", "p__tint__strength": "0.5"})
        assert resp.status_code == 200 and "study" in resp.context["adminform"].form.errors
        assert not MethodConfig.objects.filter(label="sneaky").exists()


class TestMethodForm:
    def test_fields_come_from_the_schema_and_errors_show_in_the_form(self, client, researcher, study):
        c = _client(client, researcher, "pw-alice")
        url = reverse("admin:studies_methodconfig_add")
        page = c.get(url)
        form = page.context["adminform"].form
        assert {"p__tint__strength", "p__mode__how"} <= set(form.fields)
        resp = c.post(url, {"study": study.pk, "label": "too strong", "method": "tint", "p__tint__strength": "1.5"})
        errors = resp.context["adminform"].form.errors
        assert "p__tint__strength" in errors and "1.0" in str(errors["p__tint__strength"])
        resp = c.post(url, {"study": study.pk, "label": "bad family", "method": "tint", "family": "nope",
                            "p__tint__strength": "0.3"})
        assert "cannot run on family 'nope'" in resp.context["adminform"].form.errors["family"][0]
        resp = c.post(url, {"study": study.pk, "label": "ok", "method": "tint", "family": "fake-family",
                            "p__tint__strength": "0.3"})
        assert resp.status_code == 302
        assert MethodConfig.objects.get(label="ok").params == {"strength": 0.3}


class TestUploadPage:
    def test_mixed_batch(self, client, researcher, study, culture):
        c = _client(client, researcher, "pw-alice")
        url = reverse("admin:studies_study_upload", args=[study.pk])
        files = [SimpleUploadedFile("new.png", png_bytes((5, 5, 5))), SimpleUploadedFile("bad.gif", png_bytes(fmt="GIF")),
                 SimpleUploadedFile("broken.jpg", b"\xff\xd8\xff\xe0 nope")]
        resp = c.post(url, {"kind": "content", "files": files}, follow=True)
        text = " ".join(str(m) for m in resp.context["messages"])
        assert "1 imported" in text and "bad.gif" in text and "broken.jpg" in text
        assert ContentImage.objects.filter(study=study, original_filename="new.png").exists()

    def test_page_says_what_the_study_holds_and_links_back(self, client, researcher, study, culture):
        c = _client(client, researcher, "pw-alice")
        url = reverse("admin:studies_study_upload", args=[study.pk])
        n_contents, n_styles = study.content_images.count(), study.style_images.count()
        page = c.get(url).content.decode()
        assert f"The study has {n_contents} content photographs; style artworks: {culture.name} {n_styles}." in page
        c.post(url, {"kind": "content", "files": [SimpleUploadedFile("one-more.png", png_bytes((9, 9, 9)))]})
        page = c.get(url).content.decode()
        assert f"The study has {n_contents + 1} content photographs" in page
        assert reverse("admin:studies_study_change", args=[study.pk]) in page

    def test_page_says_how_to_get_culture_tags_when_there_are_none(self, client, researcher):
        draft = do_create_study(title="Blank", slug="blank", owner=researcher, languages=["en"])
        url = reverse("admin:studies_study_upload", args=[draft.pk])
        page = _client(client, researcher, "pw-alice").get(url).content.decode()
        assert 'id="no-cultures"' in page and "entered by a superuser" in page
        get_user_model().objects.create_superuser("root", password="pw-root")
        client.logout()
        page = _client(client, get_user_model().objects.get(username="root"), "pw-root").get(url).content.decode()
        assert f'href="{reverse("admin:studies_culturetag_add")}"' in page
        CultureTag.objects.create(slug="ukiyo-e", name="Japanese ukiyo-e")
        assert 'id="no-cultures"' not in client.get(url).content.decode()

    def test_style_upload_requires_culture(self, client, researcher, study):
        c = _client(client, researcher, "pw-alice")
        resp = c.post(reverse("admin:studies_study_upload", args=[study.pk]),
                      {"kind": "style", "files": [SimpleUploadedFile("s.png", png_bytes())]})
        assert "culture" in resp.context["form"].errors


class TestActionsAndPages:
    def test_admin_index_starts_a_newcomer_off(self, client, researcher):
        page = _client(client, researcher, "pw-alice").get(reverse("admin:index")).content.decode()
        assert 'id="getting-started"' in page
        assert f'href="{reverse("admin:studies_study_add")}"' in page
        for step in ("upload images", "Generate candidates", "go-live checklist", "Build statistical report"):
            assert step in page, step

    def test_generate_action_queues_on_commit(self, client, researcher, study, django_capture_on_commit_callbacks):
        c = _client(client, researcher, "pw-alice")
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            resp = c.post(reverse("admin:studies_study_changelist"),
                          {"action": "generate_candidates", "_selected_action": [study.pk]}, follow=True)
        assert "4 new candidate(s)" in " ".join(str(m) for m in resp.context["messages"])
        assert len(callbacks) == 1 and study.candidates.count() == 4

    def test_report_action_creates_a_job_and_queues_it_on_commit(self, client, researcher, study,
                                                                 django_capture_on_commit_callbacks, monkeypatch):
        queued = []
        monkeypatch.setattr("studies.tasks.build_study_report_task.delay", queued.append)
        c = _client(client, researcher, "pw-alice")
        with django_capture_on_commit_callbacks(execute=True):
            resp = c.post(reverse("admin:studies_study_changelist"),
                          {"action": "build_report", "_selected_action": [study.pk]}, follow=True)
        report = study.reports.get()
        assert queued == [report.pk] and report.requested_by == "alice"
        assert f"report {report.pk} queued" in " ".join(str(m) for m in resp.context["messages"])

    def test_progress_and_preview(self, client, researcher, two_studies):
        mine, _ = two_studies
        Candidate.objects.filter(pk=mine.candidates.first().pk).update(status="failed", error="boom: out of memory")
        c = _client(client, researcher, "pw-alice")
        resp = c.get(reverse("admin:studies_study_progress", args=[mine.pk]))
        progress = resp.context["progress"]
        assert progress["by_status"]["done"] == 3 and progress["by_status"]["failed"] == 1
        assert progress["by_method"]["tint-0"]["done"] == 3
        assert "boom: out of memory" in resp.content.decode()
        # Generated but not scored yet (score=False above): the page says so rather than only "still running".
        assert "Scoring: 0 of 3 finished candidates have metric values." in resp.content.decode()
        resp = c.get(reverse("admin:studies_study_preview", args=[mine.pk]))
        assert len(resp.context["rows"]) == 4
        assert resp.content.decode().count('class="candidate"') == 3


    def test_study_page_names_each_methods_family_and_set_parameters(self, client, researcher, study):
        MethodConfig.objects.create(study=study, label="on fake", method="tint", family="fake-family",
                                    params={"strength": 0.3, "levels": ""})
        c = _client(client, researcher, "pw-alice")
        page = c.get(reverse("admin:studies_study_change", args=[study.pk])).content.decode()
        assert "the method&#x27;s default" in page and "fake-family" in page
        assert "strength = 0.3" in page and "levels" not in page

    def test_report_page_lists_the_archive_and_the_warnings(self, client, researcher, study):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name in ("report.pdf", "responses.csv", "codebook.json"):
                archive.writestr(name, b"x")
        report = StudyReport.objects.create(
            study=study, status="done", summary={"rows": 42, "rows_analysed": 8, "participants": 2, "seconds": 3.4,
                                                 "warnings": ["too few <participants>", "metric constant"]})
        report.archive.save("study-report.zip", ContentFile(buffer.getvalue()))
        c = _client(client, researcher, "pw-alice")
        page = c.get(reverse("admin:studies_studyreport_change", args=[report.pk])).content.decode()
        assert "report.pdf, responses.csv, codebook.json" in page
        assert "8 of 42 response rows analysed, 2 participants, 3.4 s" in page
        assert "<li>too few &lt;participants&gt;</li><li>metric constant</li>" in page
        assert '"warnings"' not in page  # not the raw JSON


class TestFreezing:
    def test_cannot_go_live_without_candidates_or_questions(self, study):
        with pytest.raises(Exception, match="no candidates have been generated; the study has no questions"):
            do_go_live(study)

    def test_live_study_is_frozen(self, client, researcher, two_studies, culture):
        mine, _ = two_studies
        complete_design(mine)
        before = compute_config_hash(mine)
        mine = do_go_live(mine, confirm_warnings=True)
        assert mine.status == Study.Status.LIVE and mine.config_hash == before
        with pytest.raises(StudyFrozenError, match="frozen"):
            do_import_images(mine, [("x.png", png_bytes((9, 9, 9)))], kind="content")
        with pytest.raises(StudyFrozenError):
            do_queue_generation(mine)
        c = _client(client, researcher, "pw-alice")
        mc = mine.method_configs.first()
        url = reverse("admin:studies_methodconfig_change", args=[mc.pk])
        resp = c.get(url, follow=True)
        assert "frozen" in " ".join(str(m) for m in resp.context["messages"])
        c.post(url, {"study": mine.pk, "label": mc.label, "method": "tint", "p__tint__strength": "0.9"})
        mc.refresh_from_db()
        assert mc.params == {"strength": 0.25}, "a frozen method config is not changed"
        resp = c.post(reverse("admin:studies_study_change", args=[mine.pk]),
                      {"title": mine.title, "slug": mine.slug, "image_size": 999})
        mine.refresh_from_db()
        assert mine.image_size == 32
        assert compute_config_hash(mine) == mine.config_hash

    def test_hash_tracks_method_parameters(self, two_studies):
        mine, _ = two_studies
        before = compute_config_hash(mine)
        MethodConfig.objects.filter(study=mine).update(params={"strength": 0.9})
        assert compute_config_hash(mine) != before

    def test_model_clean_refuses_edits_of_live_rows(self, two_studies):
        mine, _ = two_studies
        complete_design(mine)
        do_go_live(mine, confirm_warnings=True)
        mc = MethodConfig.objects.get(study=mine)
        mc.params = {"strength": 1.0}
        with pytest.raises(ValidationError, match="is live: its stimuli and methods are frozen"):
            mc.full_clean()


class TestTrainingRuns:
    def test_set_up_in_the_admin_and_queued(self, client, researcher, two_studies, culture,
                                            django_capture_on_commit_callbacks):
        from studies.models import GanTrainingRun

        mine, theirs = two_studies
        GanTrainingRun.objects.create(study=theirs, label="theirs", cultures=[culture.slug])
        c = _client(client, researcher, "pw-alice")
        url = reverse("admin:studies_gantrainingrun_add")
        resp = c.post(url, {"study": mine.pk, "label": "x", "model": "cyclegan", "cultures": '["nope"]',
                            "config": '{"device": "cuda"}'})
        errors = resp.context["adminform"].form.errors
        assert "nope" in errors["cultures"][0] and "device" in errors["config"][0]
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            resp = c.post(url, {"study": mine.pk, "label": "ink", "model": "cyclegan",
                                "cultures": f'["{culture.slug}"]', "config": "{}"})
        assert resp.status_code == 302 and len(callbacks) == 1, "training queued on commit"
        listed = c.get(reverse("admin:studies_gantrainingrun_changelist")).context["cl"].result_list
        assert [r.label for r in listed] == ["ink"]


def test_every_model_is_registered_and_its_list_renders(client, researcher, two_studies):
    """All studies models have an admin; each list renders for a researcher (owner-scoped) and a superuser."""
    from django.apps import apps
    from django.contrib import admin as django_admin

    models = apps.get_app_config("studies").get_models()
    missing = [m.__name__ for m in models if m not in django_admin.site._registry]
    assert missing == []
    root = get_user_model().objects.create_superuser("root2", password="pw-root")
    for user, password in ((researcher, "pw-alice"), (root, "pw-root")):
        c = _client(client, user, password)
        for model in apps.get_app_config("studies").get_models():
            url = reverse(f"admin:studies_{model._meta.model_name}_changelist")
            assert c.get(url).status_code == 200, (user.username, url)
        client.logout()
