"""The admin shows a researcher only their own studies' values; culture tags are the superusers' to manage."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from studies.actions import compute_config_hash
from studies.admin import OwnedAdmin
from studies.export import study_frame
from studies.models import CultureTag, ParticipantGroup, Study
from studies.permissions import make_researcher
from tests.participants.factories import make_study
from tests.participants.helpers import consent, run_to_end, start, submit_background

pytestmark = pytest.mark.django_db

SECRET_TITLE = "Alice's unpublished study"
SECRET_GROUP = "alice-private-group"


@pytest.fixture
def labs(settings):
    settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 0
    users = {n: make_researcher(get_user_model().objects.create_user(n, password=f"pw-{n}")) for n in ("alice", "bob")}
    alices = make_study(slug="alices")
    Study.objects.filter(pk=alices.pk).update(title=SECRET_TITLE)
    ParticipantGroup.objects.filter(study=alices, slug="chinese").update(name=SECRET_GROUP)
    alices.owners.add(users["alice"])
    bobs = make_study(slug="bobs")
    bobs.owners.add(users["bob"])
    client = Client()
    participant = consent(client, alices)
    submit_background(client, participant)
    start(client, participant)
    run_to_end(client, participant)
    alices.refresh_from_db()
    return users, alices, bobs


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_list_filters_show_only_own_studies_values(labs):
    users, alices, _bobs = labs
    bob = _client(users["bob"])
    pages = 0
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, OwnedAdmin) or not model_admin.list_filter:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        page = bob.get(url)
        assert page.status_code == 200, url
        text = page.content.decode()
        assert SECRET_TITLE not in text and "Alice&#x27;s unpublished study" not in text, url
        assert SECRET_GROUP not in text, url
        pages += 1
    assert pages >= 10
    # The owner still sees her own values in the same filters.
    alice_page = _client(users["alice"]).get(reverse("admin:studies_participant_changelist"))
    assert SECRET_GROUP in alice_page.content.decode()


def test_choices_show_only_own_rows(labs):
    users, alices, bobs = labs
    bob = _client(users["bob"])
    form = bob.get(reverse("admin:studies_question_add")).context["adminform"].form
    assert list(form.fields["study"].queryset) == [bobs]
    group = ParticipantGroup.objects.filter(study=alices).first()
    assert bob.get(reverse("admin:studies_participantgroup_change", args=[group.pk])).status_code == 302


class TestCultureTags:
    def test_researcher_cannot_rename_a_tag_used_by_another_researchers_live_study(self, labs):
        users, alices, _bobs = labs
        tag = CultureTag.objects.get(slug="western-oil")
        assert alices.style_images.filter(culture=tag).exists() and alices.status == Study.Status.LIVE
        hash_before, export_before = compute_config_hash(alices), study_frame(alices.pk)
        bob = _client(users["bob"])
        url = reverse("admin:studies_culturetag_change", args=[tag.pk])
        renamed = {"slug": "renamed", "name": "Renamed", "names": "{}"}
        assert bob.post(url, renamed).status_code == 403
        assert bob.post(reverse("admin:studies_culturetag_delete", args=[tag.pk]), {"post": "yes"}).status_code == 403
        assert bob.post(reverse("admin:studies_culturetag_add"), renamed).status_code == 403
        tag.refresh_from_db()
        assert (tag.slug, tag.name) == ("western-oil", "Western oil")
        assert compute_config_hash(alices) == hash_before
        assert study_frame(alices.pk).equals(export_before)
        # Researchers still see the tags, to choose among them.
        page = bob.get(reverse("admin:studies_culturetag_changelist"))
        assert page.status_code == 200 and "western-oil" in page.content.decode()
        assert not page.context["has_add_permission"]

    def test_superuser_manages_tags(self, labs):
        root = get_user_model().objects.create_superuser("root", password="pw-root")
        client = _client(root)
        response = client.post(reverse("admin:studies_culturetag_add"),
                               {"slug": "persian-miniature", "name": "Persian miniature", "names": "{}"})
        assert response.status_code == 302 and CultureTag.objects.filter(slug="persian-miniature").exists()


def test_method_form_says_where_defaults_depart_from_the_paper(labs):
    users, _alices, _bobs = labs
    page = _client(users["alice"]).get(reverse("admin:studies_methodconfig_add"))
    text = page.content.decode()
    assert "vgg19-cd16x: relu4_1 (as published)" in text
    assert "Huang &amp; Belongie 2017 use relu4_1; family vgg19-wct has offline weights only for" in text
    assert "Li et al. 2017 use relu5_1, relu4_1, relu3_1, relu2_1, relu1_1" in text
