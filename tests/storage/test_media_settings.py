"""``STORAGES["default"]`` from the environment: local disk by default, S3-compatible by configuration."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import get_media_storage

S3_VARS = ("MEDIA_S3_BUCKET", "MEDIA_S3_ENDPOINT_URL", "MEDIA_S3_REGION", "MEDIA_S3_PREFIX",
           "MEDIA_S3_ACCESS_KEY_ID", "MEDIA_S3_SECRET_ACCESS_KEY", "MEDIA_S3_ADDRESSING_STYLE",
           "MEDIA_URL_EXPIRE_SECONDS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in S3_VARS:
        monkeypatch.delenv(name, raising=False)


def test_local_disk_is_the_default():
    assert get_media_storage() == {"BACKEND": "studies.local_storage.AtomicFileSystemStorage"}


def test_bucket_selects_s3_with_every_setting(monkeypatch):
    monkeypatch.setenv("MEDIA_S3_BUCKET", "lab-media")
    monkeypatch.setenv("MEDIA_S3_ENDPOINT_URL", "https://minio.lab.example:9000")
    monkeypatch.setenv("MEDIA_S3_REGION", "eu-central-1")
    monkeypatch.setenv("MEDIA_S3_PREFIX", "/stylestudy/prod/")
    monkeypatch.setenv("MEDIA_S3_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("MEDIA_S3_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("MEDIA_URL_EXPIRE_SECONDS", "90")
    config = get_media_storage()
    assert config["BACKEND"] == "studies.storage.MediaS3Storage"
    options = config["OPTIONS"]
    assert options["bucket_name"] == "lab-media"
    assert options["endpoint_url"] == "https://minio.lab.example:9000"
    assert options["region_name"] == "eu-central-1"
    assert options["location"] == "stylestudy/prod"
    assert options["access_key"] == "AKIAEXAMPLE" and options["secret_key"] == "secret"
    assert options["querystring_auth"] is True and options["querystring_expire"] == 90
    assert options["file_overwrite"] is False and options["default_acl"] is None
    assert options["addressing_style"] == "path", "custom endpoints (MinIO, Ceph) address buckets by path"


def test_aws_without_endpoint_uses_the_credential_chain(monkeypatch):
    monkeypatch.setenv("MEDIA_S3_BUCKET", "lab-media")
    options = get_media_storage()["OPTIONS"]
    assert options["endpoint_url"] is None and options["addressing_style"] == "auto"
    assert "access_key" not in options and "secret_key" not in options
    assert options["location"] == "" and options["querystring_expire"] == 300


@pytest.mark.parametrize(("name", "value", "message"), [
    ("MEDIA_S3_ACCESS_KEY_ID", "AKIA", "set both MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY"),
    ("MEDIA_S3_PREFIX", "media/../other", "MEDIA_S3_PREFIX must be a plain key prefix"),
    ("MEDIA_S3_ADDRESSING_STYLE", "dns", "MEDIA_S3_ADDRESSING_STYLE must be path, virtual or auto"),
    ("MEDIA_URL_EXPIRE_SECONDS", "0", "MEDIA_URL_EXPIRE_SECONDS must be between 1 and 604800"),
])
def test_bad_settings_are_refused_with_a_clear_message(monkeypatch, name, value, message):
    monkeypatch.setenv("MEDIA_S3_BUCKET", "lab-media")
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(")):
        get_media_storage()


def test_media_origins_name_where_presigned_urls_point(monkeypatch):
    from config.env import get_media_origins

    assert get_media_origins() == [], "local disk: the site itself"
    monkeypatch.setenv("MEDIA_S3_BUCKET", "lab-media")
    monkeypatch.setenv("MEDIA_S3_ENDPOINT_URL", "https://minio.lab.example:9000")
    assert get_media_origins() == ["https://minio.lab.example:9000"]
    monkeypatch.setenv("MEDIA_S3_ADDRESSING_STYLE", "virtual")
    assert get_media_origins() == ["https://lab-media.minio.lab.example:9000"]
    monkeypatch.delenv("MEDIA_S3_ADDRESSING_STYLE")
    monkeypatch.delenv("MEDIA_S3_ENDPOINT_URL")
    monkeypatch.setenv("MEDIA_S3_REGION", "eu-central-1")
    assert "https://lab-media.s3.eu-central-1.amazonaws.com" in get_media_origins()
