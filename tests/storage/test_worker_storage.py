"""Worker-side files on the loopback S3 endpoint: training checkpoints and generators go to the bucket."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from studies.models import CultureTag, GanTrainingRun
from studies.permissions import make_researcher
from studies.workers.train import run_training
from tests.pipeline.conftest import build_study

TINY = {"size": 32, "iters": 2, "ngf": 4, "ndf": 4, "n_blocks": 1, "checkpoint_every": 1, "sample_every": 1,
        "log_every": 1, "min_images": 1, "deterministic": True}


@pytest.mark.django_db(transaction=True)
def test_training_keeps_checkpoints_in_the_bucket_and_nothing_in_media_root(s3_media, settings, tmp_path):
    """Checkpoints replace each other in the bucket (the old object deleted); local files are scratch only."""
    settings.DATA_DIR = tmp_path / "worker"
    owner = make_researcher(get_user_model().objects.create_user("trainer"))
    culture = CultureTag.objects.create(slug="chinese-ink", name="Chinese ink")
    study = build_study(owner, culture, slug="train")
    run = GanTrainingRun.objects.create(study=study, label="ink", cultures=["chinese-ink"], config=TINY)

    assert run_training(run.pk, device="cpu") == GanTrainingRun.Status.DONE

    run.refresh_from_db()
    keys = set(s3_media.keys())
    for field in (run.checkpoint, run.generator, run.sample_grid):
        assert f"media/{field.name}" in keys, field.name
        assert s3_media.get(field.name)
    training_keys = {k for k in keys if "/training/" in k}
    assert training_keys == {f"media/{f.name}" for f in (run.checkpoint, run.generator, run.sample_grid)}, (
        "each superseded checkpoint and sample grid was deleted from the bucket"
    )
    assert [p for p in s3_media.local_root.rglob("*") if p.is_file()] == []
