"""Stored files on the loopback S3 endpoint: atomic writes, the stimulus cache, presigned delivery."""

from __future__ import annotations

import hashlib
import io

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from studies.local_storage import AtomicFileSystemStorage
from studies.models import ContentImage, Study
from studies.permissions import make_researcher
from studies.storage import StimulusCache
from tests.participants.factories import make_study
from tests.participants.helpers import consent, start, submit_background

pytestmark = pytest.mark.django_db


def _png(colour=(10, 120, 200), size=(24, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _files_under(path) -> list:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


class TestAtomicFileSystemStorage:
    def test_a_stored_file_is_complete_and_no_partial_remains(self, tmp_path):
        storage = AtomicFileSystemStorage(location=tmp_path)
        data = bytes(range(256)) * 4096
        name = storage.save("studies/1/candidates/a.png", ContentFile(data))
        assert name == "studies/1/candidates/a.png"
        assert (tmp_path / name).read_bytes() == data
        assert [p.name for p in (tmp_path / "studies/1/candidates").iterdir()] == ["a.png"]

    def test_an_existing_file_is_never_replaced(self, tmp_path):
        storage = AtomicFileSystemStorage(location=tmp_path)
        first = storage.save("x/a.png", ContentFile(b"first"))
        second = storage.save("x/a.png", ContentFile(b"second"))
        assert first != second
        assert (tmp_path / first).read_bytes() == b"first" and (tmp_path / second).read_bytes() == b"second"

    def test_a_write_that_dies_midway_leaves_nothing_under_any_name(self, tmp_path):
        class Dying(File):
            def chunks(self, chunk_size=None):
                yield b"half of an image"
                raise OSError("connection to the worker's disk lost")

        storage = AtomicFileSystemStorage(location=tmp_path)
        with pytest.raises(OSError, match="disk lost"):
            storage.save("x/candidate.png", Dying(io.BytesIO(b"")))
        assert not storage.exists("x/candidate.png")
        assert _files_under(tmp_path) == []


class TestStimulusCache:
    def test_each_content_hash_is_downloaded_once(self, s3_media):
        study = make_study(slug="cache", contents=2, styles=1, methods=1)
        style = study.style_images.get()
        contents = list(study.content_images.all())
        cache = StimulusCache(max_bytes=10 * 1024 * 1024)
        for _ in range(5):
            assert cache.read(style.image, style.sha256) == s3_media.get(style.image.name)
            for content in contents:
                assert cache.read(content.image, content.sha256) == s3_media.get(content.image.name)
        assert cache.downloads == 3 and cache.hits == 12

    def test_least_recently_used_goes_first_beyond_the_budget(self, s3_media):
        study = make_study(slug="lru", contents=3, styles=1, methods=1)
        images = list(study.content_images.order_by("pk"))
        sizes = [img.image.size for img in images]
        cache = StimulusCache(max_bytes=sizes[0] + sizes[1])
        a, b, c = images
        cache.read(a.image, a.sha256)
        cache.read(b.image, b.sha256)
        cache.read(a.image, a.sha256)  # a is now the most recent
        cache.read(c.image, c.sha256)  # drops b
        assert cache.downloads == 3
        cache.read(a.image, a.sha256)
        assert cache.downloads == 3, "a stayed"
        cache.read(b.image, b.sha256)
        assert cache.downloads == 4, "b was dropped"

    def test_a_file_without_a_content_hash_is_refused(self, s3_media):
        study = make_study(slug="nohash", contents=1, styles=1, methods=1)
        content = study.content_images.get()
        with pytest.raises(ValueError, match="no content hash"):
            StimulusCache(max_bytes=1024).read(content.image, "")


class TestPresignedDelivery:
    def test_upload_through_the_admin_lands_in_the_bucket_only(self, s3_media, client, settings):
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        owner = make_researcher(get_user_model().objects.create_user("alice", password="pw-alice"))
        study = Study.objects.create(title="Upload", slug="upload")
        study.owners.add(owner)
        assert client.login(username="alice", password="pw-alice")
        data = _png()
        resp = client.post(reverse("admin:studies_study_upload", args=[study.pk]),
                           {"kind": "content", "files": [SimpleUploadedFile("photo.png", data)]}, follow=True)
        assert resp.status_code == 200
        image = ContentImage.objects.get(study=study)
        keys = set(s3_media.keys())
        assert f"media/{image.image.name}" in keys and f"media/{image.thumbnail.name}" in keys
        assert Image.open(io.BytesIO(s3_media.get(image.image.name))).size == (24, 16)
        assert _files_under(s3_media.local_root) == [], "nothing written to local disk"

    def test_researcher_media_redirects_to_a_working_presigned_url(self, s3_media, client, settings):
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        study = make_study(slug="researcher", contents=1, styles=1, methods=1, status=Study.Status.DRAFT)
        alice = make_researcher(get_user_model().objects.create_user("alice", password="pw-alice"))
        make_researcher(get_user_model().objects.create_user("bob", password="pw-bob"))
        study.owners.add(alice)
        candidate = study.candidates.get()
        url = reverse("studies:media", args=[candidate.image.name])
        assert candidate.image.url == url, "pages link to the checked view, never to the bucket"
        assert client.login(username="alice", password="pw-alice")
        resp = client.get(url)
        assert resp.status_code == 302
        location = resp["Location"]
        assert location.startswith(s3_media.endpoint) and "X-Amz-Signature=" in location
        assert "X-Amz-Expires=120" in location
        image = httpx.get(location)
        assert image.status_code == 200 and image.content == s3_media.get(candidate.image.name)
        assert image.headers["content-type"] == "image/png"
        # (moto does not enforce signatures; a real S3 service refuses a tampered or expired one.)
        client.logout()
        assert client.login(username="bob", password="pw-bob")
        assert client.get(url).status_code == 404, "another researcher's study: no redirect, no URL"
        client.logout()
        assert client.get(url).status_code == 404

    def test_participants_get_their_own_trials_images_through_presigned_urls(self, s3_media):
        study = make_study(slug="participants", contents=2, styles=1, methods=3)
        ca, cb = Client(), Client()
        a = consent(ca, study)
        submit_background(ca, a)
        start(ca, a)
        b = consent(cb, study)
        submit_background(cb, b)
        start(cb, b)
        trial = a.trials.filter(attention_kind="").order_by("position").first()
        for item in trial.items.select_related("candidate"):
            resp = ca.get(reverse("studies:participant_image", args=[a.token, trial.position, str(item.slot)]))
            assert resp.status_code == 302
            assert resp["Cache-Control"] == "private, max-age=60"
            fetched = httpx.get(resp["Location"])
            assert fetched.status_code == 200
            assert hashlib.sha256(fetched.content).digest() == hashlib.sha256(
                s3_media.get(item.candidate.image.name)).digest()
        style = ca.get(reverse("studies:participant_image", args=[a.token, trial.position, "style"]))
        assert httpx.get(style["Location"]).content == s3_media.get(trial.items.first().candidate.style.image.name)
        # Only positions and slots of the token's own trials are redirected at all.
        beyond = a.trials.count() + b.trials.count() + 5
        assert ca.get(reverse("studies:participant_image", args=[a.token, beyond, "0"])).status_code == 404
        assert ca.get(reverse("studies:participant_image", args=[a.token, trial.position, "99"])).status_code == 404
        b_trial = b.trials.filter(attention_kind="").order_by("position").first()
        b_item = b_trial.items.select_related("candidate").get(slot=0)
        b_resp = cb.get(reverse("studies:participant_image", args=[b.token, b_trial.position, "0"]))
        assert f"/media/{b_item.candidate.image.name}?" in b_resp["Location"]
        assert default_storage.__class__.__name__ == "MediaS3Storage"
        assert _files_under(s3_media.local_root) == []


def test_presigned_urls_point_at_the_media_origin(s3_media):
    """The origin a Content-Security-Policy must allow is the one presigned URLs use."""
    from config.env import get_media_origins

    study = make_study(slug="origin", contents=1, styles=1, methods=1)
    url = default_storage.presigned_url(study.candidates.get().image.name)
    assert get_media_origins() == [s3_media.endpoint] and url.startswith(s3_media.endpoint + "/")
