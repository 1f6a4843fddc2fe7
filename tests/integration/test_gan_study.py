"""A trained GAN as a study method, end to end at tiny size on a real Celery worker process.

A researcher starts a training run on the study's own images in the admin,
sees its sample grid and loss curves, uses it as a method, generates
candidates with the worker, takes the study live; a participant rates the
candidates; the exported provenance names the run and the checkpoint's SHA-256.
"""

from __future__ import annotations

import hashlib
import json

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from studies.actions import do_go_live, do_import_images, do_queue_generation
from studies.actions.participants import do_add_default_background_questions
from studies.export import study_configuration, study_frame
from studies.lifecycle.study import do_create_study
from studies.models import (
    CultureTag,
    GanTrainingRun,
    MethodConfig,
    ParticipantGroup,
    Question,
)
from studies.permissions import make_researcher
from tests.participants.factories import png_bytes
from tests.participants.helpers import consent, run_to_end, start, submit_background
from tests.pipeline.helpers import counts, wait_for
from tests.workers import celery_worker, purge_queues

TINY_CONFIG = {"size": 32, "iters": 4, "ngf": 4, "ndf": 4, "n_blocks": 1, "checkpoint_every": 2,
               "sample_every": 2, "log_every": 1, "deterministic": True}


def _study(owner):
    ink = CultureTag.objects.get_or_create(slug="chinese-ink", defaults={"name": "Chinese ink"})[0]
    study = do_create_study(title="GAN study", slug="gan-study", owner=owner, image_size=32, seeds=1,
                            languages=["en"], trials_per_participant=2, max_attention_failures=5,
                            texts={"en": {"consent": "Consent.", "instructions": "Rate.", "thanks": "Thanks."}})
    assert len(do_import_images(study, [(f"c{i}.png", png_bytes(10 + i)) for i in range(2)],
                                kind="content").created) == 2
    assert len(do_import_images(study, [(f"s{i}.png", png_bytes(20 + i)) for i in range(2)],
                                kind="style", culture=ink).created) == 2
    Question.objects.create(study=study, kind="likert", dimension=Question.Dimension.OVERALL, order=0,
                            texts={"en": "How well is the style captured?"}, scale_points=5,
                            scale_labels={"en": ["Poorly", "Perfectly"]}, n_candidates=1, show_style=True)
    do_add_default_background_questions(study)
    ParticipantGroup.objects.create(study=study, slug="chinese", name="chinese", culture=ink,
                                    eligibility={"cultural_background": ["chinese"]}, quota=10)
    return study


def test_gan_trained_in_the_admin_is_rated_by_participants_with_provenance(transactional_db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    owner = make_researcher(get_user_model().objects.create_user("gan-owner", password="x"))
    study = _study(owner)
    admin = Client()
    admin.force_login(owner)
    purge_queues()
    log = tmp_path / "worker.log"
    with celery_worker(log_path=log, STYLESTUDY_DEVICE="cpu", STYLESTUDY_METRICS="psnr"):
        response = admin.post(reverse("admin:studies_gantrainingrun_add"), {
            "study": study.pk, "label": "ink-gan", "model": "cyclegan", "cultures": '["chinese-ink"]',
            "config": json.dumps(TINY_CONFIG),
        }, follow=True)
        assert response.status_code == 200
        assert "has only 2 images; a GAN needs at least 20" in response.content.decode()
        run = GanTrainingRun.objects.get(study=study, label="ink-gan")
        wait_for(lambda: GanTrainingRun.objects.get(pk=run.pk).status in ("done", "failed"), 180,
                 what="the training run", log=log)
        run.refresh_from_db()
        assert run.status == GanTrainingRun.Status.DONE, run.error

        page = admin.get(reverse("admin:studies_gantrainingrun_change", args=[run.pk])).content.decode()
        assert run.sample_grid.name and run.sample_grid.url in page, "the latest sample grid is on the page"
        assert page.count("<polyline") == len(run.losses), "one loss curve per loss"

        response = admin.post(reverse("admin:studies_gantrainingrun_changelist"),
                              {"action": "use_as_method", "_selected_action": [run.pk]}, follow=True)
        assert response.status_code == 200
        (mc,) = MethodConfig.objects.filter(study=study, training_run=run)
        with run.generator.open("rb") as fh:
            sha = hashlib.sha256(fh.read()).hexdigest()
        assert mc.params["checkpoint_sha256"] == sha

        assert do_queue_generation(study, score=False)["created"] == 4
        wait_for(lambda: counts(study)["done"] + counts(study)["failed"] == 4, 300, what="4 candidates", log=log)
        assert counts(study)["done"] == 4, list(study.candidates.values_list("error", flat=True))

    study = do_go_live(study, confirm_warnings=True)  # unscored candidates, no completion code: both intended here
    participant_client = Client()
    participant = consent(participant_client, study)
    assert submit_background(participant_client, participant).status_code == 302
    assert start(participant_client, participant).status_code == 302
    participant = run_to_end(participant_client, participant)
    assert participant.status == "completed", participant.status

    frame = study_frame(study.pk)
    rated = frame.loc[frame["value"].notna() & frame["candidate_id"].notna()]
    gan_candidates = set(mc.candidates.values_list("pk", flat=True))
    assert len(rated) >= 2 and set(rated["candidate_id"]) <= gan_candidates, frame[["candidate_id", "value"]]

    config = study_configuration(study.pk)
    assert config["study"]["config_hash"]
    (method,) = config["methods"]
    assert method["params"]["checkpoint_sha256"] == sha and method["training_run_id"] == run.pk
    for cand in config["candidates"]:
        assert cand["provenance"]["training_run"]["id"] == run.pk
        assert cand["provenance"]["training_run"]["checkpoint_sha256"] == sha
        assert cand["provenance"]["training_run"]["config"] == TINY_CONFIG
