"""Fixtures for the pipeline tests: tiny images, studies built with the real ``do_*`` actions."""

from __future__ import annotations

import io
import sys

import pytest
from django.contrib.auth import get_user_model
from PIL import Image

from studies.actions import do_create_study, do_import_images
from studies.models import CultureTag, MethodConfig, Question
from studies.permissions import make_researcher

from .fakes import make_methods_module, make_metrics_module


def png_bytes(colour=(200, 30, 30), size=(40, 30), fmt="PNG", **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt, **save)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Logins in these tests need no real key stretching.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings.MEDIA_ROOT


@pytest.fixture
def fake_methods(monkeypatch):
    mod = make_methods_module()
    monkeypatch.setitem(sys.modules, "stylecore.methods", mod)
    return mod


@pytest.fixture
def fake_metrics(monkeypatch):
    mod = make_metrics_module()
    monkeypatch.setitem(sys.modules, "stylecore.metrics", mod)
    return mod


@pytest.fixture
def researcher(db):
    user = get_user_model().objects.create_user("alice", password="pw-alice")
    return make_researcher(user)


@pytest.fixture
def other_researcher(db):
    user = get_user_model().objects.create_user("bob", password="pw-bob")
    return make_researcher(user)


@pytest.fixture
def culture(db):
    return CultureTag.objects.create(slug="chinese-ink", name="Chinese ink wash")


def build_study(owner, culture, *, slug="s1", contents=2, styles=2, methods=("tint",), seeds=1):
    study = do_create_study(title=f"Study {slug}", slug=slug, owner=owner, image_size=32, seeds=seeds,
                            languages=["en"])
    palette = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 20), (20, 220, 220)]
    report = do_import_images(study, [(f"c{i}.png", png_bytes(palette[i])) for i in range(contents)], kind="content")
    assert len(report.created) == contents, report.summary()
    report = do_import_images(study, [(f"s{i}.png", png_bytes(palette[-1 - i], size=(24, 24)))
                                      for i in range(styles)], kind="style", culture=culture)
    assert len(report.created) == styles, report.summary()
    for k, method in enumerate(methods):
        params = {"strength": 0.25 + 0.5 * k} if method == "tint" else {}
        MethodConfig.objects.create(study=study, label=f"{method}-{k}", method=method, params=params)
    return study


@pytest.fixture
def study(researcher, culture, fake_methods):
    return build_study(researcher, culture)


def add_question(study):
    return Question.objects.create(study=study, kind="likert", dimension="style_fidelity", texts={"en": "How?"})


def complete_design(study, *, quota=20):
    """What the go-live checklist needs besides candidates: texts, a question, background questions, a group."""
    from studies.actions.participants import do_add_default_background_questions
    from studies.models import ParticipantGroup, Study

    Study.objects.filter(pk=study.pk).update(texts={lang: {"consent": "Consent.", "instructions": "Rate.",
                                                            "thanks": "Thanks."} for lang in study.languages})
    study.refresh_from_db()
    question = add_question(study)
    do_add_default_background_questions(study)
    ParticipantGroup.objects.create(study=study, slug="everyone", name="Everyone", quota=quota,
                                    eligibility={"cultural_background": ["western", "chinese"]})
    return question
