"""``manage.py media_migrate``: the demo study moved from local disk to the loopback S3 endpoint and back."""

from __future__ import annotations

import hashlib

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from config.env import get_media_storage
from studies.actions import do_queue_generation
from studies.demo import create_demo_study
from studies.media_migration import referenced_names
from studies.models import MethodConfig, Study, StudyReport
from studies.permissions import make_researcher
from studies.workers.generate import run_generation
from tests.conftest import require
from tests.s3 import new_bucket

pytestmark = pytest.mark.django_db


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def demo_on_disk(settings, tmp_path, samples_dir, django_capture_on_commit_callbacks):
    """The demo study (small) on local disk: uploads, thumbnails, generated candidates, a report archive."""
    from stylecore.methods import available_methods

    require("color" in available_methods(), "stylecore has no colour transfer")
    settings.MEDIA_ROOT = tmp_path / "media"
    owner = make_researcher(get_user_model().objects.create_user("owner"))
    study = create_demo_study(samples_dir, owner, contents=2, styles_per_culture=1, image_size=48)
    MethodConfig.objects.create(study=study, label="Colour", method="color", params={"mode": "reinhard"})
    with django_capture_on_commit_callbacks(execute=False):
        do_queue_generation(study, score=False)
    for mc, seed in set(study.candidates.values_list("method_config", "seed")):
        ids = study.candidates.filter(method_config=mc, seed=seed).values_list("pk", flat=True)
        run_generation(list(ids), device="cpu")
    report = StudyReport.objects.create(study=study)
    report.archive.save("report.zip", ContentFile(b"PK\x05\x06" + bytes(18)), save=True)
    # A second study that is not moved when only the demo is named.
    Study.objects.create(title="Other", slug="other")
    return study


def _local_files(root, study) -> dict[str, str]:
    folder = root / f"studies/{study.pk}"
    return {str(p.relative_to(root)): _sha(p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def _use_s3(settings, monkeypatch, media) -> None:
    for name, value in media.env.items():
        monkeypatch.setenv(name, value)
    settings.STORAGES = {**settings.STORAGES, "default": get_media_storage()}


def test_demo_study_moves_to_s3_and_every_file_is_identical(demo_on_disk, settings, monkeypatch, s3_endpoint,
                                                           capsys):
    study = demo_on_disk
    local = _local_files(settings.MEDIA_ROOT, study)
    referenced = referenced_names(study.pk)
    assert study.candidates.filter(status="done").count() == 6, "2 contents × 3 styles × colour"
    kinds = {name.split("/")[2] for name in referenced}
    assert kinds == {"content", "style", "candidates", "reports"}, kinds
    assert set(referenced) <= set(local) and len(referenced) >= 2 + 2 + 3 + 3 + 6 + 1
    media = new_bucket(s3_endpoint, prefix="lab/media")
    _use_s3(settings, monkeypatch, media)

    call_command("media_migrate", "--to", "s3", "--study", study.slug)
    out = capsys.readouterr().out
    assert f"copied and verified {len(local)}, already there 0, errors 0" in out, out
    keys = set(media.keys())
    assert keys == {f"lab/media/{name}" for name in local}, "the demo's files and nothing else"
    for name, digest in local.items():
        assert _sha(media.get(name)) == digest, name
    # The rows' names are unchanged and now open from the bucket.
    for name in referenced:
        with default_storage.open(name, "rb") as fh:
            assert _sha(fh.read()) == local[name]
    for cand in study.candidates.all():
        with cand.image.open("rb") as fh:
            assert _sha(fh.read()) == local[cand.image.name]

    # Running again copies nothing and finds everything.
    call_command("media_migrate", "--to", "s3", "--study", str(study.pk))
    assert f"copied and verified 0, already there {len(local)}, errors 0" in capsys.readouterr().out

    # And back to an empty local disk, identical again.
    settings.MEDIA_ROOT = settings.MEDIA_ROOT.parent / "restored"
    call_command("media_migrate", "--to", "local", "--study", study.slug)
    assert _local_files(settings.MEDIA_ROOT, study) == local


def test_a_conflict_or_a_missing_file_is_reported_and_nothing_is_overwritten(demo_on_disk, settings, monkeypatch,
                                                                            s3_endpoint, capsys):
    study = demo_on_disk
    candidate = study.candidates.order_by("pk").first()
    style = study.style_images.order_by("pk").first()
    media = new_bucket(s3_endpoint)
    client = media.client()
    client.put_object(Bucket=media.bucket, Key=f"media/{candidate.image.name}", Body=b"someone else's bytes")
    (settings.MEDIA_ROOT / style.image.name).unlink()
    _use_s3(settings, monkeypatch, media)
    with pytest.raises(CommandError, match="2 file"):
        call_command("media_migrate", "--to", "s3")
    err = capsys.readouterr().err
    assert f"{candidate.image.name}: already at the destination with different content (left unchanged)" in err
    assert f"{style.image.name}: missing at the source" in err
    assert media.get(candidate.image.name) == b"someone else's bytes"
    others = [c for c in study.candidates.all() if c.pk != candidate.pk]
    assert all(_sha(media.get(c.image.name)) == _sha((settings.MEDIA_ROOT / c.image.name).read_bytes())
               for c in others), "the rest was moved"


def test_refuses_without_object_storage_or_with_an_unknown_study(demo_on_disk, settings, monkeypatch,
                                                                  s3_endpoint):
    monkeypatch.delenv("MEDIA_S3_BUCKET", raising=False)
    with pytest.raises(CommandError, match="set MEDIA_S3_BUCKET"):
        call_command("media_migrate", "--to", "s3")
    media = new_bucket(s3_endpoint)
    _use_s3(settings, monkeypatch, media)
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        call_command("media_migrate", "--to", "s3", "--study", "nope")
    call_command("media_migrate", "--to", "s3", "--study", demo_on_disk.slug, "--dry-run")
    assert media.keys() == [], "a dry run copies nothing"
